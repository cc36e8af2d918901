"""Read an accepted manifest and the files it names into one dataset: categories, and per-image masks.

Where the files are
    ``gtaudit_local.export.sources``: a :class:`Source` streams the accepted manifest and reads each
    object by the ``s3://`` URI the manifest gives, from a local mirror of the bucket or from S3.
    The loader below is the same for both. Loading reads the manifest only; :meth:`Dataset.samples`
    then reads one image and its mask at a time, and skips (and reports) an image whose image or
    mask is missing, so one lost object does not sink the export.

One category list for the whole export
    Each line's mask is an 8-bit index mask whose pixel value indexes *that line's*
    ``internal-color-map``; two lines may number the same classes differently. Categories are
    therefore keyed by class name, in first-seen order (BACKGROUND excluded, always 0), and each
    mask is remapped through a 256-entry look-up table as it is read. A category keeps the colour
    of the first colour map that names it.

Orientation
    Ground Truth shows workers the image as displayed, with its EXIF orientation applied, so the
    mask matches that view. Sizes here are displayed sizes, and :meth:`Sample.write_image` writes an
    image whose pixels match the mask whatever the reader does with EXIF.

Names
    Output files are named after the original (:func:`unique_names`): unsafe characters replaced,
    Unicode kept, and images that share a stem told apart by a short hash of their object ID.
"""

from __future__ import annotations

import io
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

from gtaudit_local.export.sources import ExportError, ObjectMissing, Source, open_source

SEGMENTATION_TYPE = "groundtruth/semantic-segmentation"
_ORIENTATION_TAG = 0x0112
_TRANSPOSED = {5, 6, 7, 8}  # orientations that swap width and height


@dataclass(frozen=True, slots=True)
class Category:
    """One class of the export: its id (1-based; 0 is background), name and colour (``#rrggbb``)."""

    id: int
    name: str
    color: str


@dataclass(frozen=True, slots=True)
class Item:
    """One accepted image: its manifest line, its objects' URIs, its output name, its class mapping."""

    line: int
    object_id: str
    image: str  # the s3:// URI of the original, as the manifest gives it
    mask: str  # the s3:// URI of the consolidated mask
    name: str  # the output file name (safe, unique), with the original's extension
    lut: np.ndarray  # 256 uint8: this line's class index -> category id (0 background)

    @property
    def stem(self) -> str:
        """The output name without its extension."""
        return PurePosixPath(self.name).stem


@dataclass(frozen=True, slots=True)
class Skipped:
    """An item the export left out, and why (its image or mask is missing)."""

    item: Item
    reason: str

    def __str__(self) -> str:
        return f"line {self.item.line} ({self.item.object_id}): {self.reason}"


@dataclass(frozen=True, slots=True)
class Sample:
    """One item with the bytes of its image and mask: what a writer needs, one item at a time."""

    item: Item
    image: bytes
    mask: bytes

    @property
    def name(self) -> str:
        """The output file name."""
        return self.item.name

    @property
    def stem(self) -> str:
        """The output name without its extension."""
        return self.item.stem

    def size(self) -> tuple[int, int]:
        """(width, height) of the image as displayed (EXIF orientation applied)."""
        with Image.open(io.BytesIO(self.image)) as im:
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
        mask = self.item.mask
        try:
            with Image.open(io.BytesIO(self.mask)) as im:
                if im.mode not in ("P", "L"):
                    raise ExportError(f"mask is {im.mode}, not an 8-bit index PNG: {mask}")
                raw = np.asarray(im)
        except OSError as exc:
            raise ExportError(f"mask cannot be read: {mask} ({exc})") from exc
        if raw.shape[::-1] != self.size():
            raise ExportError(f"mask {mask} is {raw.shape[1]}x{raw.shape[0]}, its image is {self.size()}")
        unknown = sorted(int(v) for v in np.unique(raw) if self.item.lut[v] == _UNMAPPED)
        if unknown:
            raise ExportError(f"mask {mask} uses indices {unknown} that its internal-color-map lacks")
        classes: np.ndarray = self.item.lut[raw]
        return classes

    def write_image(self, dest: Path) -> None:
        """Write the original to ``dest``: its bytes when upright, else re-encoded upright.

        A rotated original is written with the rotation applied and the orientation tag removed,
        so its pixels match the mask in a reader that ignores EXIF and in one that applies it.
        """
        with Image.open(io.BytesIO(self.image)) as im:
            if _orientation(im) in (None, 1):
                dest.write_bytes(self.image)
                return
            upright = ImageOps.exif_transpose(im)
            options: dict[str, Any] = {"exif": upright.getexif()}
            if im.format in ("JPEG", "WEBP"):
                options["quality"] = 95
            upright.save(dest, format=im.format, **options)


_UNMAPPED = 255  # never a category id: a label set holds at most 254 classes


@dataclass(frozen=True, slots=True)
class Dataset:
    """Everything an export writes: the categories, the images in manifest order, and where they are."""

    categories: tuple[Category, ...]
    items: tuple[Item, ...]
    source: Source

    def samples(self, skipped: list[Skipped]) -> Iterator[Sample]:
        """Each item with its bytes, read one item at a time (mask first, the smaller).

        An item whose image or mask is missing is appended to ``skipped`` instead of yielded.

        Raises
        ------
        ExportError
            An object exists but cannot be read (access denied, no connection): no later item
            could be read either.
        """
        for item in self.items:
            data: dict[str, bytes] = {}
            for what, uri in (("mask", item.mask), ("image", item.image)):
                try:
                    data[what] = self.source.read(uri)
                except ObjectMissing as exc:
                    skipped.append(Skipped(item, f"{what} {exc}"))
                    break
            else:
                yield Sample(item, data["image"], data["mask"])


def _orientation(im: Image.Image) -> int | None:
    value = im.getexif().get(_ORIENTATION_TAG)
    return int(value) if isinstance(value, int) else None


def segmentation_attribute(line: Mapping[str, Any]) -> str | None:
    """The attribute name (``segmentation`` for ``segmentation-ref``) of the line's segmentation label."""
    for key, value in line.items():
        meta = line.get(f"{key}-metadata")
        is_ref = key.endswith("-ref") and isinstance(value, str)
        if is_ref and isinstance(meta, Mapping) and meta.get("type") == SEGMENTATION_TYPE:
            return key.removesuffix("-ref")
    return None


def _lines(source: Source) -> Iterator[tuple[int, dict[str, Any]]]:
    for item in iter_manifest(source.lines()):
        if isinstance(item, BadLine):
            raise ExportError(f"{source.name} line {item.number}: {item.reason}")
        yield item.number, item.data


def load_dataset(source: str | Path, attribute: str | None = None, *, s3: Any | None = None) -> Dataset:
    """Read the accepted manifest that ``source`` names and index its images, masks and classes.

    Only the manifest is read here; the images and masks are read by :meth:`Dataset.samples`.

    Parameters
    ----------
    source
        A run folder, one run's folder, an accepted manifest file, or an ``s3://`` manifest or run
        prefix (see ``gtaudit_local.export.sources``).
    attribute
        The label attribute name; default: the ``*-ref`` whose metadata has type
        ``groundtruth/semantic-segmentation``, found per line.
    s3
        The S3 client for an ``s3://`` source; default ``boto3.client("s3")``.

    Raises
    ------
    ExportError
        No manifest, an empty one, a line without a segmentation label, colour map or valid URIs.
    """
    src = open_source(source, s3)
    categories: dict[str, Category] = {}
    found: list[tuple[int, str, str, str, np.ndarray, str]] = []
    for number, line in _lines(src):
        where = f"{src.name} line {number}"
        attr = attribute or segmentation_attribute(line)
        meta = line.get(f"{attr}-ref-metadata")
        source_ref, mask_ref = line.get("source-ref"), line.get(f"{attr}-ref")
        if attr is None or not isinstance(meta, Mapping) or not isinstance(mask_ref, str):
            raise ExportError(f"{where}: no semantic-segmentation label (name it with --attribute)")
        if not isinstance(source_ref, str):
            raise ExportError(f"{where}: no source-ref")
        try:
            parse_s3_uri(source_ref)
            parse_s3_uri(mask_ref)
        except InvalidS3UriError as exc:
            raise ExportError(f"{where}: {exc}") from exc
        lut = _remap(meta.get("internal-color-map"), categories, where)
        object_id = object_id_of(line) or source_ref
        found.append((number, object_id, source_ref, mask_ref, lut, PurePosixPath(unquote(source_ref)).name))
    if not found:
        raise ExportError(f"no accepted images in {src.name}")
    names = unique_names((oid, name) for _, oid, _, _, _, name in found)
    items = tuple(
        Item(line=number, object_id=oid, image=image, mask=mask, name=name, lut=lut)
        for (number, oid, image, mask, lut, _), name in zip(found, names, strict=True)
    )
    return Dataset(tuple(categories.values()), items, src)


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
