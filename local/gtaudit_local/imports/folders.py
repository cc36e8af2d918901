"""Read a folder of masks beside their images, matched by file stem.

Three layouts, found in this order (``gtaudit export`` writes the first two):

==================== ========================================== =========================================
layout               masks                                      what the values mean
==================== ========================================== =========================================
PASCAL VOC           ``SegmentationClass/<stem>.png`` (palette  ``labels.txt`` (line *i* is class *i*, line
                     index masks), images in ``JPEGImages/``    0 background); 255 is VOC's "void" border:
                                                                background
``masks`` export     ``masks/<stem>.png`` (grey index masks),   ``legend.json``
                     else ``colour/<stem>.png`` (RGB)           (``{"1": {"name", "color"}, ...}``)
images + masks       ``masks/<stem>.png`` beside ``images/``    ``legend.json`` if present, else value *i*
                                                                (or the colour of label *i*) is the run's
                                                                label *i*
==================== ========================================== =========================================

Images are ``--images`` if given, else ``JPEGImages/``, ``images/`` or the folder itself (not
searched recursively). A grey or palette mask is read by its values, an RGB(A) mask by its colours.
A mask without an image, an image without a mask and a stem shared by several images are each
refused with the reason; the others go on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gtaudit.labels import BACKGROUND, LabelSet
from gtaudit.names import unique_stems
from gtaudit.pipeline.start import IMAGE_SUFFIXES
from gtaudit.pipeline.start_audit import ImportedMask, Refusal

from gtaudit_local.imports.classes import ClassMap
from gtaudit_local.imports.sources import Place, Refused, SourceError, open_mask

VOC_VOID = 255


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a folder keeps its masks and images, and what the masks' values mean."""

    masks: Path
    images: Path
    classes: ClassMap


def _legend(path: Path, labels: LabelSet) -> ClassMap:
    """``legend.json`` of the ``masks`` export: ``{"<value>": {"name", "color"}}``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = [(int(k), str(v["name"]), str(v["color"]) if v.get("color") else None) for k, v in data.items()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SourceError(f'{path} is not a legend ({{"<value>": {{"name", "color"}}}}): {exc}') from exc
    try:
        return ClassMap(entries, labels, "legend.json")
    except Refused as exc:  # a colour that is not #rrggbb: the whole folder's legend is unusable
        raise SourceError(f"{path}: {exc}") from exc


def _voc_labels(path: Path, labels: LabelSet) -> ClassMap:
    """VOC's ``labels.txt``: line *i* names class *i*; line 0 and the void value 255 are background."""
    try:
        names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path} cannot be read: {exc}") from exc
    entries = [(i, BACKGROUND if i == 0 else n, None) for i, n in enumerate(names)]
    return ClassMap([*entries, (VOC_VOID, BACKGROUND, None)], labels, "labels.txt")


def find_layout(folder: Path, labels: LabelSet, images: Path | None = None) -> Layout:
    """The layout of ``folder`` (see the module docstring).

    Raises
    ------
    SourceError
        No masks folder, no images folder, or an unreadable legend.
    """
    if (folder / "SegmentationClass").is_dir():
        voc = folder / "labels.txt"
        classes = _voc_labels(voc, labels) if voc.is_file() else ClassMap.of_run(labels)
        return Layout(folder / "SegmentationClass", images or _images(folder), classes)
    masks = next((folder / n for n in ("masks", "colour", "color") if (folder / n).is_dir()), None)
    if masks is None:
        raise SourceError(f"{folder} holds no masks: expected SegmentationClass/, masks/ or colour/")
    legend = folder / "legend.json"
    classes = _legend(legend, labels) if legend.is_file() else ClassMap.of_run(labels)
    return Layout(masks, images or _images(folder), classes)


def _images(folder: Path) -> Path:
    return next((folder / n for n in ("JPEGImages", "images") if (folder / n).is_dir()), folder)


def _by_stem(folder: Path, suffixes: tuple[str, ...]) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in suffixes:
            found.setdefault(path.stem, []).append(path)
    return found


def read_folder(folder: Path, *, labels: LabelSet, images: Path | None = None) -> Iterator[ImportedMask | Refusal]:
    """Each stem of the folder's masks and images as an imported mask or a refusal, in stem order.

    Raises
    ------
    SourceError
        See :func:`find_layout`; or the images folder does not exist.
    """
    layout = find_layout(folder, labels, images)
    if not layout.images.is_dir():
        raise SourceError(f"--images is not a folder: {layout.images}")
    masks = _by_stem(layout.masks, (".png",))
    pictures = _by_stem(layout.images, IMAGE_SUFFIXES)
    stems = sorted(masks.keys() | pictures.keys())
    names = unique_stems((str(layout.images / s), s) for s in stems)
    for stem, name in zip(stems, names, strict=True):
        found = pictures.get(stem, [])
        image = str(found[0]) if len(found) == 1 else None
        try:
            yield ImportedMask(name, _one_image(stem, found, layout), _mask(stem, masks.get(stem), layout))
        except Refused as exc:
            yield Refusal(name, str(exc), image)


def _one_image(stem: str, found: list[Path], layout: Layout) -> str:
    if not found:
        raise Refused(f"no image named {stem}.* in {layout.images} for the mask {layout.masks / stem}.png")
    if len(found) > 1:
        raise Refused(
            f"several images named {stem}.* ({', '.join(p.name for p in found)}): which one the mask is of is unknown"
        )
    return str(found[0])


def _mask(stem: str, found: list[Path] | None, layout: Layout) -> np.ndarray:
    if not found:
        raise Refused(f"no mask {stem}.png in {layout.masks}")
    path = Place(str(found[0]))
    return layout.classes.decode(open_mask(path.read(None, "mask"), path.ref), palette="index")
