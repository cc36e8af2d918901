"""One exception class per failure mode. Callers branch on the type, never on the message."""

from __future__ import annotations

from botocore.exceptions import ClientError


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


class UnknownColorsError(InvalidMaskError):
    """Too many of a worker's mask pixels have colours that match none of its labels."""


class InvalidAnnotationError(GtauditError, ValueError):
    """A worker's annotation is missing, empty, unreadable or not a segmentation answer."""


class InvalidNameError(GtauditError, ValueError):
    """A labeling job or label attribute name breaks Ground Truth's naming rules."""


class ManifestError(GtauditError, ValueError):
    """A manifest line is not a JSON object, or lacks what the stage needs."""


class InvalidAnswerError(GtauditError, ValueError):
    """An auditor's answer cannot be parsed into a verdict (no verdict, both verdicts, not JSON)."""


class PipelineStateError(GtauditError):
    """The pipeline-state table disagrees with what a step expects (unknown run, a job of another run)."""


class StepPendingError(GtauditError):
    """A step cannot finish yet (overlays still rendering, a lease held by another invocation): retry later."""


class TraceTableNotFoundError(GtauditError, LookupError):
    """No traceability table: none given, none in the environment, none in the stack's outputs."""


class RetryableError(GtauditError, RuntimeError):
    """Part of the work failed for a reason a retry may fix (S3 throttling, a 5xx): the invoker should retry."""


class InvalidTaskInputError(GtauditError, ValueError):
    """A file given as a task input holds no taskInput a worker template can render (e.g. a Lambda event)."""


class S3ObjectUnavailableError(GtauditError, ClientError):
    """An S3 object an event names does not exist or may not be read (NoSuchKey, NoSuchBucket, 403).

    Permanent: a retry cannot help. Also a botocore ``ClientError`` with the same ``response`` and
    ``operation_name``, so code that branches on ``exc.response["Error"]["Code"]`` keeps working.
    ``gtaudit.s3io`` raises a subclass named after the error code (as botocore's own classes are),
    so ``type(exc).__name__`` is still ``"NoSuchKey"``. Transient S3 errors stay plain ``ClientError``.
    """


class JobRejectedError(GtauditError):
    """Ground Truth refused to create a job (ValidationException): retrying the same request cannot help."""

    def __init__(self, job_name: str, message: str) -> None:
        super().__init__(f"CreateLabelingJob {job_name} refused: {message}")
        self.job_name = job_name
