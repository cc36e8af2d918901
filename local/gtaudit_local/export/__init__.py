"""Export accepted labels in the layouts training code reads: COCO, PASCAL VOC, plain masks, YOLO-seg.

:func:`export_dataset` reads a run (``gtaudit_local.export.sources``: the accepted manifest and
the objects it names, from a local mirror of the bucket or from S3; ``gtaudit_local.export.dataset``:
one category list for the run, and the originals and consolidated masks read one image at a time)
and hands it to one writer of ``gtaudit_local.export.formats``. Only the accepted manifest is read:
an image that failed or needs attention is not ground truth yet. An image whose original or mask is
missing is left out and reported in :attr:`Export.skipped`; everything else is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gtaudit_local.export.dataset import Dataset, Skipped, load_dataset
from gtaudit_local.export.formats import WRITERS
from gtaudit_local.export.sources import ExportError

FORMATS: tuple[str, ...] = tuple(WRITERS)

__all__ = ["FORMATS", "Export", "ExportError", "export_dataset"]


@dataclass(frozen=True, slots=True)
class Export:
    """What an export did: the dataset it read, and the images it left out because a file was missing."""

    dataset: Dataset
    skipped: tuple[Skipped, ...]

    @property
    def written(self) -> int:
        """How many images were written."""
        return len(self.dataset.items) - len(self.skipped)


def export_dataset(
    source: str | Path, fmt: str, out: Path, *, attribute: str | None = None, s3: Any | None = None
) -> Export:
    """Write the accepted labels of ``source`` to the folder ``out`` in format ``fmt``.

    Parameters
    ----------
    source
        A run folder as ``gtaudit demo`` writes it, one run's folder, an accepted manifest, or an
        ``s3://`` accepted manifest or run prefix (``s3://<bucket>/runs/<run>/``).
    fmt
        One of :data:`FORMATS`.
    out
        The folder to write; it must not exist or be empty, so no stale file mixes in.
    attribute
        The label attribute name, if not the one whose type is semantic segmentation.
    s3
        The S3 client for an ``s3://`` source; default ``boto3.client("s3")``.

    Returns
    -------
    Export
        What was read, and which images were skipped because their image or mask is missing.

    Raises
    ------
    ExportError
        An unknown format, a non-empty ``out``, or a source that cannot be read.
    """
    writer = WRITERS.get(fmt)
    if writer is None:
        raise ExportError(f"unknown format {fmt!r} (choose {', '.join(FORMATS)})")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"--out must be an empty or new folder: {out}")
    dataset = load_dataset(source, attribute, s3=s3)
    out.mkdir(parents=True, exist_ok=True)
    skipped: list[Skipped] = []
    writer(dataset.categories, dataset.samples(skipped), out)
    return Export(dataset, tuple(skipped))
