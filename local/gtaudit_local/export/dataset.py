"""Read an accepted manifest and the files it names into one dataset: categories, and per-image masks.

Where the files are
    A run folder that ``gtaudit demo`` writes mirrors its bucket: ``s3://<bucket>/<key>`` is
    ``<folder>/<key>``, and each run's accepted manifest is ``runs/<run>/accepted.manifest``.
    SOURCE may be that folder (the newest run is taken), one run's folder, or a manifest file; the
    mirror root is the nearest folder above the manifest that holds the first line's image.

One category list for the whole export
    Each line's mask is an 8-bit index mask whose pixel value indexes *that line's*
    ``internal-color-map``; two lines may number the same classes differently. Categories are
    therefore keyed by class name, in first-seen order (BACKGROUND excluded, always 0), and each
    mask is remapped through a 256-entry look-up table as it is read. A category keeps the colour
    of the first colour map that names it.

Orientation
    Ground Truth shows workers the image as displayed, with its EXIF orientation applied, so the
    mask matches that view. Sizes here are displayed sizes, and :meth:`Item.write_image` writes an
    image whose pixels match the mask whatever the reader does with EXIF.

Names
    Output files are named after the original (:func:`unique_names`): unsafe characters replaced,
    Unicode kept, and images that share a stem told apart by a short hash of their object ID.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

import numpy as np
from gtaudit.exceptions import InvalidS3UriError
from gtaudit.labels import BACKGROUND, BACKGROUND_COLOR, normalize_color
from gtaudit.manifest import BadLine, iter_manifest, object_id_of
from gtaudit.names import unique_names
from gtaudit.s3uri import parse_s3_uri
from PIL import Image, ImageOps

SEGMENTATION_TYPE = "groundtruth/semantic-segmentation"
ACCEPTED_MANIFEST = "accepted.manifest"
# Characters no file name may hold on any common file system, plus the path separators.
_ORIENTATION_TAG = 0x0112
_TRANSPOSED = {5, 6, 7, 8}  # orientations that swap width and height


class ExportError(ValueError):
    """The source cannot be exported: no manifest, a malformed line, a missing or mismatched file."""


@dataclass(frozen=True, slots=True)
class Category:
    """One class of the export: its id (1-based; 0 is background), name and colour (``#rrggbb``)."""

    id: int
    name: str
    color: str


@dataclass(frozen=True, slots=True)
class Item:
    """One accepted image: where its files are, its output name, and how its mask maps to categories."""

    object_id: str
    image: Path
    mask: Path
    name: str  # the output file name (safe, unique), with the original's extension
    lut: np.ndarray  # 256 uint8: this line's class index -> category id (0 background)

    @property
    def stem(self) -> str:
        """The output name without its extension."""
        return PurePosixPath(self.name).stem

    def size(self) -> tuple[int, int]:
        """(width, height) of the image as displayed (EXIF orientation applied)."""
        with Image.open(self.image) as im:
            w, h = im.size
            return (h, w) if _orientation(im) in _TRANSPOSED else (w, h)

    def classes(self) -> np.ndarray:
        """The mask as a 2-D uint8 array of category ids.

        Raises
        ------
        ExportError
            The mask is not an index PNG, uses an index its colour map lacks, or its size is not
            the displayed image's.
        """
        try:
            with Image.open(self.mask) as im:
                if im.mode not in ("P", "L"):
                    raise ExportError(f"mask is {im.mode}, not an 8-bit index PNG: {self.mask}")
                raw = np.asarray(im)
        except OSError as exc:
            raise ExportError(f"mask cannot be read: {self.mask} ({exc})") from exc
        if raw.shape[::-1] != self.size():
            raise ExportError(f"mask {self.mask} is {raw.shape[1]}x{raw.shape[0]}, its image is {self.size()}")
        unknown = sorted(int(v) for v in np.unique(raw) if self.lut[v] == _UNMAPPED)
        if unknown:
            raise ExportError(f"mask {self.mask} uses indices {unknown} that its internal-color-map lacks")
        classes: np.ndarray = self.lut[raw]
        return classes

    def write_image(self, dest: Path) -> None:
        """Write the original to ``dest``: its bytes when upright, else re-encoded upright.

        A rotated original is written with the rotation applied and the orientation tag removed,
        so its pixels match the mask in a reader that ignores EXIF and in one that applies it.
        """
        with Image.open(self.image) as im:
            if _orientation(im) in (None, 1):
                shutil.copyfile(self.image, dest)
                return
            upright = ImageOps.exif_transpose(im)
            options: dict[str, Any] = {"exif": upright.getexif()}
            if im.format in ("JPEG", "WEBP"):
                options["quality"] = 95
            upright.save(dest, format=im.format, **options)


_UNMAPPED = 255  # never a category id: a label set holds at most 254 classes


@dataclass(frozen=True, slots=True)
class Dataset:
    """Everything an export writes: the categories and the images in manifest order."""

    categories: tuple[Category, ...]
    items: tuple[Item, ...]


def _orientation(im: Image.Image) -> int | None:
    value = im.getexif().get(_ORIENTATION_TAG)
    return int(value) if isinstance(value, int) else None


def find_manifest(source: Path) -> Path:
    """The accepted manifest that ``source`` names (a run folder, one run, or the file itself).

    Raises
    ------
    ExportError
        Nothing is there, or a folder holds no accepted manifest.
    """
    if source.is_file():
        return source
    if not source.is_dir():
        raise ExportError(f"SOURCE not found: {source}")
    if (source / ACCEPTED_MANIFEST).is_file():
        return source / ACCEPTED_MANIFEST
    # Run names start with their UTC start time, so the last in name order is the newest.
    runs = sorted(source.glob(f"runs/*/{ACCEPTED_MANIFEST}"))
    if not runs:
        raise ExportError(f"no runs/*/{ACCEPTED_MANIFEST} in {source}")
    return runs[-1]


def segmentation_attribute(line: Mapping[str, Any]) -> str | None:
    """The attribute name (``segmentation`` for ``segmentation-ref``) of the line's segmentation label."""
    for key, value in line.items():
        meta = line.get(f"{key}-metadata")
        is_ref = key.endswith("-ref") and isinstance(value, str)
        if is_ref and isinstance(meta, Mapping) and meta.get("type") == SEGMENTATION_TYPE:
            return key.removesuffix("-ref")
    return None


def _local_path(root: Path, uri: str) -> Path:
    """The mirrored file of an ``s3://`` URI under ``root`` (keys may be URL-quoted in manifests)."""
    key = parse_s3_uri(uri).key
    plain = root / unquote(key)
    return plain if plain.exists() or key == unquote(key) else root / key


def _mirror_root(manifest: Path, source_ref: str) -> Path:
    for folder in manifest.resolve().parents:
        if _local_path(folder, source_ref).is_file():
            return folder
    raise ExportError(f"no folder above {manifest} holds the image of {source_ref}")


def _lines(manifest: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with manifest.open("rb") as fp:
            for item in iter_manifest(fp):
                if isinstance(item, BadLine):
                    raise ExportError(f"{manifest} line {item.number}: {item.reason}")
                yield item.number, item.data
    except OSError as exc:
        raise ExportError(f"manifest cannot be read: {manifest} ({exc})") from exc


def load_dataset(source: Path, attribute: str | None = None) -> Dataset:
    """Read the accepted manifest that ``source`` names and index its images, masks and classes.

    Parameters
    ----------
    source
        A run folder, one run's folder, or an accepted manifest file (see the module docstring).
    attribute
        The label attribute name; default: the ``*-ref`` whose metadata has type
        ``groundtruth/semantic-segmentation``, found per line.

    Raises
    ------
    ExportError
        No manifest, an empty one, a line without a segmentation label or colour map, a file missing.
    """
    manifest = find_manifest(source)
    categories: dict[str, Category] = {}
    found: list[tuple[str, Path, Path, np.ndarray, str]] = []
    root: Path | None = None
    for number, line in _lines(manifest):
        where = f"{manifest} line {number}"
        attr = attribute or segmentation_attribute(line)
        meta = line.get(f"{attr}-ref-metadata")
        source_ref, mask_ref = line.get("source-ref"), line.get(f"{attr}-ref")
        if attr is None or not isinstance(meta, Mapping) or not isinstance(mask_ref, str):
            raise ExportError(f"{where}: no semantic-segmentation label (name it with --attribute)")
        if not isinstance(source_ref, str):
            raise ExportError(f"{where}: no source-ref")
        try:
            root = root or _mirror_root(manifest, source_ref)
            image, mask = _local_path(root, source_ref), _local_path(root, mask_ref)
        except InvalidS3UriError as exc:
            raise ExportError(f"{where}: {exc}") from exc
        for path in (image, mask):
            if not path.is_file():
                raise ExportError(f"{where}: file not found: {path}")
        lut = _remap(meta.get("internal-color-map"), categories, where)
        object_id = object_id_of(line) or source_ref
        found.append((object_id, image, mask, lut, PurePosixPath(unquote(source_ref)).name))
    if not found:
        raise ExportError(f"no accepted images in {manifest}")
    names = unique_names((oid, name) for oid, _, _, _, name in found)
    items = tuple(
        Item(object_id=oid, image=image, mask=mask, name=name, lut=lut)
        for (oid, image, mask, lut, _), name in zip(found, names, strict=True)
    )
    return Dataset(tuple(categories.values()), items)


def _remap(color_map: object, categories: dict[str, Category], where: str) -> np.ndarray:
    """The look-up table from one colour map's indices to category ids, adding new categories."""
    if not isinstance(color_map, Mapping) or not color_map:
        raise ExportError(f"{where}: no internal-color-map")
    try:
        entries = sorted(
            (int(key), str(entry["class-name"]), normalize_color(str(entry.get("hex-color", BACKGROUND_COLOR))))
            for key, entry in color_map.items()
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ExportError(f"{where}: malformed internal-color-map ({exc})") from exc
    lut = np.full(256, _UNMAPPED, dtype=np.uint8)
    for index, name, color in entries:
        if not 0 <= index < _UNMAPPED:
            raise ExportError(f"{where}: internal-color-map index {index} does not fit an 8-bit mask")
        if name != BACKGROUND and name not in categories:
            if len(categories) == _UNMAPPED - 1:
                raise ExportError(f"{where}: more than {_UNMAPPED - 1} classes in all")
            categories[name] = Category(len(categories) + 1, name, color)
        lut[index] = 0 if name == BACKGROUND else categories[name].id
    return lut
