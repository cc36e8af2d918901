"""The audit (検品) stage: the pre-annotation task input (``pre``) and the verdict consolidation (``post``)."""
