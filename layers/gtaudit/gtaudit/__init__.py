"""gtaudit: label and audit (検品) semantic-segmentation data on SageMaker Ground Truth."""

__version__ = "0.1.0"
