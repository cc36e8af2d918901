"""One exception class per failure mode. Callers branch on the type, never on the message."""

from __future__ import annotations


class GtauditError(Exception):
    """Base class of every error gtaudit raises on purpose."""


class InvalidEventError(GtauditError, ValueError):
    """A Lambda event does not have the shape of its Ground Truth or AWS contract."""


class InvalidS3UriError(GtauditError, ValueError):
    """A string is not an ``s3://bucket/key`` URI."""


class ForbiddenLocationError(GtauditError, ValueError):
    """An S3 URI points outside the buckets or prefixes this stack may touch."""


class UnsupportedDataObjectError(GtauditError, ValueError):
    """A data object cannot be worked: no image reference, or a type that is not an image."""


class InvalidLabelSetError(GtauditError, ValueError):
    """The label set configuration is malformed (empty, duplicate names, bad colours)."""


class InvalidMaskError(GtauditError, ValueError):
    """A worker's or a consolidated mask cannot be decoded or does not fit its image."""


class InvalidImageError(GtauditError, ValueError):
    """An original image cannot be decoded, or is larger than the configured pixel limit."""


class SizeMismatchError(InvalidMaskError):
    """A mask's size differs from the size of the image it annotates."""


class InvalidNameError(GtauditError, ValueError):
    """A labeling job or label attribute name breaks Ground Truth's naming rules."""


class ManifestError(GtauditError, ValueError):
    """A manifest line is not a JSON object, or lacks what the stage needs."""
