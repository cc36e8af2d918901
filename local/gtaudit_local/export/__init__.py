"""Export accepted labels in the layouts training code reads: COCO, PASCAL VOC, plain masks, YOLO-seg.

:func:`export_dataset` reads a local run (``gtaudit_local.export.dataset``: the accepted manifest,
the originals and the consolidated masks it names, one category list for the run) and hands it to
one writer of ``gtaudit_local.export.formats``. Only the accepted manifest is read: an image that
failed or needs attention is not ground truth yet.
"""

from __future__ import annotations

from pathlib import Path

from gtaudit_local.export.dataset import Dataset, ExportError, load_dataset
from gtaudit_local.export.formats import WRITERS

FORMATS: tuple[str, ...] = tuple(WRITERS)

__all__ = ["FORMATS", "ExportError", "export_dataset"]


def export_dataset(source: Path, fmt: str, out: Path, *, attribute: str | None = None) -> Dataset:
    """Write the accepted labels of ``source`` to the folder ``out`` in format ``fmt``.

    Parameters
    ----------
    source
        A run folder as ``gtaudit demo`` writes it, one run's folder, or an accepted manifest.
    fmt
        One of :data:`FORMATS`.
    out
        The folder to write; it must not exist or be empty, so no stale file mixes in.
    attribute
        The label attribute name, if not the one whose type is semantic segmentation.

    Returns
    -------
    Dataset
        What was written: the categories and the images.

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
    dataset = load_dataset(source, attribute)
    out.mkdir(parents=True, exist_ok=True)
    writer(dataset, out)
    return dataset
