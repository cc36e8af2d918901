"""Read a lead's gold objects (images with known-correct masks) for ``gtaudit start --gold``.

A gold source takes the forms ``--from`` takes (``gtaudit_local.imports``), local or ``s3://``:

* a folder of masks beside their images (VOC, the ``masks`` export layout, ``images/`` + ``masks/``);
* a Ground Truth output manifest of the built-in semantic-segmentation type (``.manifest``/``.jsonl``);
* a COCO instances file (``.json``), or a folder holding one as ``annotations.json``.

The readers are the import's, so the rules are the import's: classes matched to the run's label
set by name, every value or colour of a mask defined by the source and in the label set, a
manifest line without a mask refused with Ground Truth's ``failure-reason``. Each usable object
becomes a ``gtaudit.gold.GoldObject`` (its image's file name and bytes, its truth as the run's
class indices); each refused one a ``(name, reason)`` pair, and the others go on. What needs the
run (the image decodes; the mask has the size the image is displayed at) is checked by the start
(``gtaudit.pipeline.gold_start.check_gold``), which refuses in the same way.

A gold set is meant to be small (tens of objects): the objects are held in memory, images and
truths, until the start has written them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from gtaudit.gold import GoldObject
from gtaudit.labeling.post import MAX_IMAGE_BYTES
from gtaudit.labels import LabelSet, parse_label_set
from gtaudit.pipeline.start_audit import Refusal

from gtaudit_local.imports import detect_kind, read_source
from gtaudit_local.imports.sources import Place, Refused, SourceError


@dataclass
class GoldRead:
    """What a gold source gave: the usable objects, and ``(name, reason)`` of each refused one."""

    objects: list[GoldObject] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def _label_set(labels: Sequence[str] | LabelSet) -> LabelSet:
    """The run's label set: as given, or names with the stack's default colours (a colour mask's key)."""
    if isinstance(labels, LabelSet):
        return labels
    return LabelSet.from_names(labels, parse_label_set(None).colors())


def read_gold(source: str | Path, labels: Sequence[str] | LabelSet, *, s3: Any = None) -> GoldRead:
    """Read every object of a gold source.

    Parameters
    ----------
    source
        A folder, a manifest or a COCO file, local or ``s3://`` (see the module docstring).
    labels
        The run's classes in order (truth index ``i`` is ``labels[i - 1]``), or its ``LabelSet``
        when colour masks must be read in the stack's own colours.
    s3
        A boto3 S3 client, for a source or images in S3.

    Returns
    -------
    GoldRead

    Raises
    ------
    gtaudit_local.imports.SourceError
        The source cannot be read at all (missing, not the format it claims to be); nothing is read.
    """
    try:
        detect_kind(str(source))
    except SourceError as exc:  # the import's words name its own option
        raise SourceError(str(exc).replace("--from", "gold source", 1)) from exc
    _, objects = read_source(str(source), labels=_label_set(labels), s3=s3)
    read = GoldRead()
    for obj in objects:
        if isinstance(obj, Refusal):
            read.refused.append((obj.name, obj.reason))
            continue
        place = Place(obj.image)
        try:
            image = place.read(s3, "image", max_bytes=MAX_IMAGE_BYTES)
        except Refused as exc:
            read.refused.append((obj.name, str(exc)))
            continue
        read.objects.append(GoldObject(obj.name + PurePosixPath(place.name).suffix, image, obj.classes))
    return read
