"""The labeling stage: the pre-annotation task input (``pre``) and the consolidation of masks (``post``)."""
