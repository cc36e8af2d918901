"""Read a COCO instances file as semantic masks: one mask per image entry, painted from its annotations.

COCO keeps ``images`` (``id``, ``file_name``, ``width``, ``height``), ``categories`` (``id``,
``name``) and ``annotations`` (``image_id``, ``category_id``, ``segmentation``). Each image entry
becomes one object whose mask paints every annotation of the image with its category's class, in
file order (where annotations overlap, the later one wins; ``iscrowd`` regions are painted too).
``segmentation`` may be polygons, uncompressed RLE or compressed RLE; pycocotools, COCO's own
library, decodes all three. An image entry without annotations is an image with nothing to label.
``gtaudit export --format coco`` writes exactly this form, so a run's export imports again.

``file_name`` is relative to where the images are (``--images``, a folder or ``s3://`` prefix;
default ``images/`` beside the file when there is one, else the file's folder).

Refused with the reason, while the other images go on: an annotation whose ``image_id`` no image
entry has (listed once per missing image), a category the file does not define or the run's label
set lacks, an annotation without a segmentation (a box-only annotation), a segmentation that
cannot be decoded or whose size differs from its image entry's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from gtaudit.labels import LabelSet
from gtaudit.names import unique_stems
from gtaudit.pipeline.start_audit import ImportedMask, Refusal

from gtaudit_local.imports.classes import ClassMap
from gtaudit_local.imports.sources import Place, Refused, SourceError, read_source_file

KEYS = ("images", "annotations", "categories")


def is_coco(doc: Any) -> bool:
    """Whether a parsed JSON document has COCO's three lists."""
    return isinstance(doc, dict) and all(isinstance(doc.get(k), list) for k in KEYS)


def load_coco(place: Place, s3: Any) -> dict[str, Any]:
    """The COCO document; raise ``SourceError`` if it is not JSON or lacks COCO's three lists."""
    try:
        doc = json.loads(read_source_file(place, s3, "COCO file"))
    except json.JSONDecodeError as exc:
        raise SourceError(f"COCO file is not JSON: {place.ref} (line {exc.lineno}: {exc.msg})") from exc
    if not is_coco(doc):
        raise SourceError(f"{place.ref} is not a COCO instances file: it needs lists {', '.join(KEYS)}")
    return dict(doc)


def _size(entry: Mapping[str, Any]) -> tuple[int, int] | None:
    """``(height, width)`` of an image entry, None when it does not give both as positive integers."""
    w, h = entry.get("width"), entry.get("height")
    if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h)):
        return int(h), int(w)  # type: ignore[arg-type]
    return None


def _polygons(seg: list[Any]) -> bool:
    """Whether ``seg`` is COCO polygons: lists of at least three x, y pairs."""
    return all(
        isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 and all(isinstance(v, int | float) for v in p)
        for p in seg
    )


def binary_mask(ann: Mapping[str, Any], size: tuple[int, int] | None) -> np.ndarray:
    """One annotation's region as a ``(height, width)`` array of 0/1.

    Raises
    ------
    Refused
        No segmentation, one pycocotools cannot decode, polygons without a size, or a size other than ``size``.
    """
    from pycocotools import mask as rle  # imported here: only an import of a COCO file needs it

    seg, what = ann.get("segmentation"), f"annotation {ann.get('id')!r}"
    try:
        if isinstance(seg, list) and seg and _polygons(seg):
            if size is None:
                raise Refused(f"{what} has polygons but its image entry gives no width and height")
            region = rle.decode(rle.merge(rle.frPyObjects(seg, *size)))
        elif isinstance(seg, dict) and isinstance(seg.get("size"), list) and len(seg["size"]) == 2:
            h, w = (int(v) for v in seg["size"])
            counts = seg.get("counts")
            if isinstance(counts, list):  # uncompressed RLE: run lengths as numbers
                region = rle.decode(rle.frPyObjects(seg, h, w))
            elif isinstance(counts, str):  # compressed RLE: COCO's own text form
                region = rle.decode({"size": [h, w], "counts": counts.encode("ascii")})
            else:
                raise Refused(f"{what}: its RLE has no counts")
        else:
            raise Refused(f"{what} has no segmentation (a box-only annotation?)")
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise Refused(f"{what}: its segmentation cannot be decoded ({exc})") from exc
    if size is not None and region.shape != size:
        got, want = region.shape, size
        raise Refused(f"{what}'s mask is {got[1]}x{got[0]}, its image entry says {want[1]}x{want[0]}")
    return np.asarray(region)


def paint(entry: Mapping[str, Any], anns: list[Mapping[str, Any]], classes: ClassMap) -> np.ndarray:
    """The semantic mask of one image entry: its annotations painted in order, the later on top."""
    size = _size(entry)
    out: np.ndarray | None = None if size is None else np.zeros(size, dtype=np.uint8)
    for ann in anns:
        index = classes.value(ann.get("category_id"), f"annotation {ann.get('id')!r}'s category_id")
        region = binary_mask(ann, size)
        if out is None:  # no size in the entry: the first RLE gives it, the others must match
            size = region.shape
            out = np.zeros(region.shape, dtype=np.uint8)
        out[region.astype(bool)] = index
    if out is None:
        raise Refused("its image entry gives no width and height, and no annotation gives a size")
    return out


def read_coco(
    doc: Mapping[str, Any], *, labels: LabelSet, images: Place, what: str = "the COCO file"
) -> Iterator[ImportedMask | Refusal]:
    """Each image entry of a COCO document as an imported mask or a refusal; then the orphan annotations."""
    categories = [
        (c["id"], str(c["name"]), None) for c in doc["categories"] if isinstance(c, dict) and "id" in c and "name" in c
    ]
    classes = ClassMap(categories, labels, f"{what}'s categories")
    by_image: dict[Any, list[Mapping[str, Any]]] = {}
    for ann in doc["annotations"]:
        if isinstance(ann, dict):
            by_image.setdefault(ann.get("image_id"), []).append(ann)
    entries = [e for e in doc["images"] if isinstance(e, dict)]
    places = [images.resolve(str(e.get("file_name") or "")) for e in entries]
    names = unique_stems((p.ref, p.name) for p in places)
    seen: set[Any] = set()
    for entry, place, name in zip(entries, places, names, strict=True):
        image_id = entry.get("id")
        if not entry.get("file_name"):
            yield Refusal(name or f"image-{image_id}", f"image entry {image_id!r} has no file_name")
        elif image_id in seen:
            yield Refusal(name, f"image id {image_id!r} is listed twice", place.ref)
        else:
            try:
                yield ImportedMask(name, place.ref, paint(entry, by_image.get(image_id, []), classes))
            except Refused as exc:
                yield Refusal(name, str(exc), place.ref)
        seen.add(image_id)
    for image_id, anns in by_image.items():
        if image_id not in seen:
            ids = ", ".join(str(a.get("id")) for a in anns[:5]) + (" ..." if len(anns) > 5 else "")
            why = f"annotation {ids} names image_id {image_id!r}, which {what} does not list among its images"
            yield Refusal(f"image-{image_id}", why)
