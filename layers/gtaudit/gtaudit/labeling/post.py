"""Consolidation of semantic-segmentation answers: decode, map colours, vote, score, write.

Each worker submits an RGBA PNG painted in the colours of its ``labelMappings``. A mask pixel is
**background** (class 0) when it is transparent (alpha < 128) or white; otherwise its colour is
looked up among the worker's label colours (case-insensitive hex). Colours that match no label
exactly, such as anti-aliased edge pixels, snap to the nearest label colour (or white) within
``SNAP_TOLERANCE`` (Euclidean RGB distance); beyond it they are *unknown* and count as background.
When unknown pixels exceed ``MAX_UNKNOWN_FRACTION`` of the pixels the worker painted, the
annotation is excluded.

Class order: ``labelCategories`` when the event has them (class i = category i-1), then any label
a worker used that is not among them; without ``labelCategories``, labels in first-seen order
over the workers sorted by worker ID, each worker's ``labelMappings`` in its own order. Index 0
is always BACKGROUND ``#ffffff``, as in Ground Truth's built-in segmentation output.

Vote: per-pixel plurality; **a tie goes to the lowest class index**, so BACKGROUND wins any tie it
is part of. The result does not depend on the order of the workers.

Agreement: the mean over worker pairs of the IoU of labeled pixels, where the intersection is the
pixels both workers gave the same non-background class and the union the pixels either labeled
(1.0 when neither labeled anything); ``None`` with one worker.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import urllib.parse
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError
from PIL import Image, ImageFile, UnidentifiedImageError
from pydantic import ValidationError

from gtaudit import layout
from gtaudit.exceptions import (
    GtauditError,
    InvalidAnnotationError,
    InvalidEventError,
    InvalidLabelSetError,
    InvalidMaskError,
    InvalidS3UriError,
    SizeMismatchError,
    UnknownColorsError,
)
from gtaudit.labels import BACKGROUND, BACKGROUND_COLOR, MAX_LABELS, PALETTE, hex_to_rgb, normalize_color
from gtaudit.models import Annotation, ConsolidationItem, PostAnnotationEvent, describe_errors
from gtaudit.s3io import get_bytes, get_json, put_bytes
from gtaudit.s3uri import S3Uri, parse_s3_uri

ALPHA_OPAQUE = 128  # alpha below this is an unpainted (background) pixel
SNAP_TOLERANCE = 48.0  # Euclidean RGB distance within which an off colour snaps to a label colour
MAX_UNKNOWN_FRACTION = 0.10  # of the painted pixels; above it the annotation is excluded
MAX_MASK_PIXELS = 50_000_000  # larger masks are refused before decoding (decompression bombs)
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # an annotation file given by s3Uri larger than this is refused
SEGMENTATION_ELEMENT = "crowd-semantic-segmentation"
_WHITE = 0xFFFFFF
_UNRESOLVED = 255  # never a class index: MAX_LABELS is 254


# ---------------------------------------------------------------- classes and answers


@dataclass(frozen=True, slots=True)
class ClassTable:
    """The classes of one object's consolidated mask: index 0 is BACKGROUND, then each label."""

    names: tuple[str, ...]
    colors: tuple[str, ...]

    def index(self, name: str) -> int:
        """The class index of ``name``; raise ``KeyError`` if it is not in the table."""
        return self.names.index(name)

    def color_map(self, confidence: float) -> dict[str, dict[str, Any]]:
        """Ground Truth's ``internal-color-map`` with one confidence for every class."""
        return {
            str(i): {"class-name": n, "hex-color": c, "confidence": confidence}
            for i, (n, c) in enumerate(zip(self.names, self.colors, strict=True))
        }


def build_class_table(categories: Sequence[str] | None, mappings: Sequence[Mapping[str, str]]) -> ClassTable:
    """Fix the class order and each class's colour for one object.

    Parameters
    ----------
    categories
        The job's ``labelCategories``, or ``None``.
    mappings
        Each worker's ``{label: "#rrggbb"}``, ordered by worker ID.

    Returns
    -------
    ClassTable
        Categories first (in order), then other labels in first-seen order. A class takes the
        colour the first worker gave it; a category no worker used takes a free palette colour.

    Raises
    ------
    InvalidLabelSetError
        More classes than an 8-bit mask holds.
    """
    names: list[str] = [BACKGROUND]
    for name in (*(categories or ()), *(n for m in mappings for n in m)):
        if name not in names:
            names.append(name)
    if len(names) - 1 > MAX_LABELS:
        raise InvalidLabelSetError(f"{len(names) - 1} classes, at most {MAX_LABELS} fit an 8-bit mask")
    seen: dict[str, str] = {BACKGROUND: BACKGROUND_COLOR}
    for m in mappings:
        for name, color in m.items():
            seen.setdefault(name, color)
    free = _free_colors(set(seen.values()))
    colors = [seen.get(n) or next(free) for n in names]
    return ClassTable(tuple(names), tuple(colors))


def _free_colors(taken: set[str]) -> Iterator[str]:
    """Palette colours not in ``taken``, then (deterministically) other distinct non-white colours."""
    yield from (c for c in PALETTE if c not in taken)
    for n in range(1, 1 << 24):
        color = f"#{(n * 0x9E3779) & 0xFFFFFF:06x}"  # an odd step visits every colour once
        if color not in taken and color not in PALETTE and color != BACKGROUND_COLOR:
            taken.add(color)
            yield color


@dataclass(frozen=True, slots=True)
class SegmentationAnswer:
    """One worker's decoded answer: the PNG bytes, its label colours and the declared image size."""

    png: bytes
    label_mappings: dict[str, str]
    size: tuple[int, int] | None  # (width, height)


def parse_answer(content: Any) -> SegmentationAnswer:
    """Find and check the segmentation answer in a worker's ``answerContent``.

    Parameters
    ----------
    content
        The parsed answer: top-level keys are the crowd elements' names. The value holding
        ``labeledImage`` is taken (``crowd-semantic-segmentation`` first).

    Returns
    -------
    SegmentationAnswer

    Raises
    ------
    InvalidAnnotationError
        No segmentation answer, an empty image, bad base64, bad colours or sizes.
    """
    if not isinstance(content, dict):
        raise InvalidAnnotationError(f"answer content must be a JSON object, got {type(content).__name__}")
    candidates = [content.get(SEGMENTATION_ELEMENT), *content.values()]
    answer = next((v for v in candidates if isinstance(v, dict) and "labeledImage" in v), None)
    if answer is None:
        raise InvalidAnnotationError("empty answer: no segmentation (labeledImage) in the answer")
    image = answer["labeledImage"]
    data = image.get("pngImageData") if isinstance(image, dict) else None
    if not isinstance(data, str) or not data.strip():
        raise InvalidAnnotationError("empty answer: labeledImage.pngImageData is missing or empty")
    if data.startswith("data:"):
        data = data.partition(",")[2]
    try:
        png = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidAnnotationError("pngImageData is not base64") from None
    return SegmentationAnswer(png, _label_mappings(answer.get("labelMappings")), _image_size(answer))


def _label_mappings(raw: Any) -> dict[str, str]:
    """``{label: {"color": "#RRGGBB"}}`` -> ``{label: "#rrggbb"}``, checked for clashes."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidAnnotationError("labelMappings must be an object")
    out: dict[str, str] = {}
    for name, value in raw.items():
        color = value.get("color") if isinstance(value, dict) else None
        try:
            out[name] = normalize_color(color)  # type: ignore[arg-type]
        except InvalidLabelSetError:
            raise InvalidAnnotationError(f"labelMappings[{name!r}] has no '#rrggbb' colour") from None
        if name == BACKGROUND or out[name] == BACKGROUND_COLOR:
            raise InvalidAnnotationError(f"label {name!r} clashes with BACKGROUND {BACKGROUND_COLOR}")
    if len(set(out.values())) != len(out):
        raise InvalidAnnotationError("labelMappings gives two labels the same colour")
    return out


def _image_size(answer: Mapping[str, Any]) -> tuple[int, int] | None:
    """``inputImageProperties`` as ``(width, height)``, ``None`` when absent."""
    props = answer.get("inputImageProperties")
    if props is None:
        return None
    w = props.get("width") if isinstance(props, dict) else None
    h = props.get("height") if isinstance(props, dict) else None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h)):
        raise InvalidAnnotationError("inputImageProperties must hold positive integer width and height")
    return int(w), int(h)  # type: ignore[arg-type]


# ---------------------------------------------------------------- pixels


def _pack(color: str) -> int:
    """``#rrggbb`` as the 24-bit little-endian key of an RGBA pixel viewed as ``uint32``."""
    r, g, b = hex_to_rgb(color)
    return r | g << 8 | b << 16


def decode_mask(
    png: bytes,
    palette: Sequence[tuple[int, str]],
    *,
    size: tuple[int, int] | None = None,
    tolerance: float = SNAP_TOLERANCE,
    max_unknown_fraction: float = MAX_UNKNOWN_FRACTION,
    max_pixels: int = MAX_MASK_PIXELS,
) -> np.ndarray:
    """Decode a worker's RGBA PNG into a class-index array.

    Parameters
    ----------
    png
        The PNG file's bytes.
    palette
        ``(class index, "#rrggbb")`` for each of the worker's labels.
    size
        The expected ``(width, height)``, or ``None`` to accept any size.
    tolerance
        How far (Euclidean RGB) an off colour may be from a label colour, or white, to snap to it.
    max_unknown_fraction
        The share of painted pixels that may match nothing before the mask is refused.
    max_pixels
        Refuse larger masks before decoding them.

    Returns
    -------
    numpy.ndarray
        ``uint8`` of shape ``(height, width)``: 0 for background and unknown colours, else the class.

    Raises
    ------
    InvalidMaskError
        Not a PNG, corrupt, or too large.
    SizeMismatchError
        The PNG's size differs from ``size``.
    UnknownColorsError
        Too many pixels match no label colour.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(png), formats=["PNG"])
            if img.width * img.height > max_pixels:
                raise InvalidMaskError(f"mask is {img.width}x{img.height}, more than {max_pixels} pixels")
            if size is not None and img.size != size:
                raise SizeMismatchError(f"mask is {img.width}x{img.height}, the image is {size[0]}x{size[1]}")
            rgba = _decode_rgba(img)
    except InvalidMaskError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError, Warning) as exc:
        raise InvalidMaskError(f"pngImageData is not a readable PNG ({type(exc).__name__})") from None
    height, width = rgba.shape[:2]
    pixels = np.ascontiguousarray(rgba).view("<u4").reshape(-1)
    del rgba, img
    key = pixels & 0xFFFFFF
    # Exact colours through a 2**24 lookup table; only the few leftover pixels need a search.
    lut = np.full(1 << 24, _UNRESOLVED, dtype=np.uint8)
    lut[_WHITE] = 0
    for index, color in palette:
        lut[_pack(color)] = index
    classes = np.take(lut, key)
    np.putmask(classes, pixels < (ALPHA_OPAQUE << 24), 0)
    del pixels, lut
    leftover = np.flatnonzero(classes == _UNRESOLVED)
    unknown = 0
    if leftover.size:
        colors, inverse = np.unique(key[leftover], return_inverse=True)
        snapped, unknown_colors = _snap(colors, palette, tolerance)
        classes[leftover] = snapped[inverse]
        unknown = int(np.count_nonzero(unknown_colors[inverse]))
    del key
    if unknown:
        painted = int(np.count_nonzero(classes)) + unknown
        if unknown > max_unknown_fraction * painted:
            raise UnknownColorsError(
                f"{unknown} of {painted} painted pixels match no label colour (limit {max_unknown_fraction:.0%})"
            )
    return classes.reshape(height, width)


def _decode_rgba(img: Image.Image) -> np.ndarray:
    """Decode an opened image into an ``(h, w, 4)`` RGBA array.

    An RGBA PNG is decoded straight into the array's memory: ``np.asarray`` on a loaded image
    copies it through ``tobytes``, which costs about as much as the decoding itself.
    """
    if img.mode == "RGBA" and isinstance(img, ImageFile.ImageFile) and img._im is None:
        arr = np.empty((img.height, img.width, 4), dtype=np.uint8)
        target = Image.frombuffer("RGBA", img.size, arr, "raw", "RGBA", 0, 1)
        img.im = target.im
        img.load()
        if img.im is target.im:  # Pillow decoded into our buffer
            return arr
    elif img.mode != "RGBA":
        img = img.convert("RGBA")
    return np.asarray(img)


def _snap(keys: np.ndarray, palette: Sequence[tuple[int, str]], tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """For each packed colour: the nearest candidate's class within ``tolerance`` (0 if none), and unknown flags."""
    targets = [(0, BACKGROUND_COLOR), *palette]
    cand = np.array([hex_to_rgb(c) for _, c in targets], dtype=np.int32)
    idx = np.array([i for i, _ in targets], dtype=np.uint8)
    rgb = np.stack([keys & 0xFF, (keys >> 8) & 0xFF, (keys >> 16) & 0xFF], axis=1).astype(np.int32)
    dist = ((rgb[:, None, :] - cand[None, :, :]) ** 2).sum(axis=2)
    nearest = dist.argmin(axis=1)  # first minimum: ties go to the earlier (lower) candidate
    ok = dist[np.arange(len(keys)), nearest] <= tolerance * tolerance
    return np.where(ok, idx[nearest], 0).astype(np.uint8), ~ok


@dataclass(frozen=True, slots=True)
class VoteResult:
    """The consolidated class array and the workers' agreement (``None`` for one worker)."""

    mask: np.ndarray
    agreement: float | None


def vote(masks: Sequence[np.ndarray]) -> VoteResult:
    """Per-pixel plurality vote of same-shaped class arrays, and their mean pairwise IoU.

    Parameters
    ----------
    masks
        One ``uint8`` class array per worker, all the same shape.

    Returns
    -------
    VoteResult
        The winning class per pixel (a tie goes to the lowest class index) and the agreement.

    Raises
    ------
    ValueError
        ``masks`` is empty or the shapes differ.
    """
    if not masks:
        raise ValueError("masks: need at least one mask")
    shape = masks[0].shape
    if any(m.shape != shape for m in masks):
        raise ValueError(f"masks: shapes differ: {sorted({m.shape for m in masks})}")
    if len(masks) == 1:
        return VoteResult(masks[0].copy(), None)
    # votes[i] = how many workers chose worker i's class at each pixel. The plurality class is
    # then the class of a worker with the most votes; pairwise passes keep this independent of
    # the number of classes, and the same passes give the IoUs.
    votes = [np.ones(shape, dtype=np.uint8) for _ in masks]
    labeled = [m != 0 for m in masks]
    ious = []
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            same = masks[i] == masks[j]
            votes[i] += same
            votes[j] += same
            union = int(np.count_nonzero(labeled[i] | labeled[j]))
            inter = int(np.count_nonzero(same & labeled[i]))
            ious.append(inter / union if union else 1.0)
    best = masks[0].copy()
    best_votes = votes[0]
    for m, v in zip(masks[1:], votes[1:], strict=True):
        better = (v > best_votes) | ((v == best_votes) & (m < best))
        np.copyto(best, m, where=better)
        np.copyto(best_votes, v, where=better)
    return VoteResult(best, math.fsum(ious) / len(ious))


def encode_mask(classes: np.ndarray, colors: Sequence[str]) -> bytes:
    """An 8-bit indexed (P mode) PNG whose palette entry i is ``colors[i]``.

    Raises
    ------
    ValueError
        ``classes`` is not a 2-D ``uint8`` array, or it uses an index ``colors`` lacks.
    """
    if classes.ndim != 2 or classes.dtype != np.uint8:
        raise ValueError(f"classes: need a 2-D uint8 array, got {classes.ndim}-D {classes.dtype}")
    img = Image.fromarray(classes)
    img.putpalette([v for c in colors for v in hex_to_rgb(c)])
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------- one batch


@dataclass(slots=True)
class Exclusion:
    """A worker's annotation left out of the vote, and why."""

    worker_id: str
    reason: str

    def as_json(self) -> dict[str, str]:
        """The ``excluded[]`` entry of the consolidated content."""
        return {"workerId": self.worker_id, "reason": self.reason}


@dataclass(slots=True)
class ObjectResult:
    """What happened to one data object."""

    dataset_object_id: str
    content: dict[str, Any]
    excluded: list[Exclusion]
    agreement: float | None = None

    @property
    def consolidated(self) -> bool:
        """Whether a mask was written."""
        return self.content.get("status") == "consolidated"


@dataclass(slots=True)
class BatchResult:
    """The Lambda's answer plus what happened, for logs and metrics."""

    response: list[dict[str, Any]] = field(default_factory=list)
    objects: list[ObjectResult] = field(default_factory=list)
    skipped_items: list[str] = field(default_factory=list)  # items without a datasetObjectId


@dataclass(frozen=True, slots=True)
class BatchContext:
    """What every object of a batch shares."""

    s3: Any
    attribute: str
    categories: tuple[str, ...] | None
    output_root: S3Uri
    timestamp: str


def consolidate_batch(event: PostAnnotationEvent, s3: Any) -> BatchResult:
    """Consolidate one Ground Truth batch: one response entry per ``datasetObjectId``.

    Parameters
    ----------
    event
        The parsed consolidation event.
    s3
        A boto3 S3 client.

    Returns
    -------
    BatchResult
        ``response`` is what the Lambda returns. A bad annotation is excluded with a reason, an
        object with none left gets a ``failed`` entry; neither affects the other objects.

    Raises
    ------
    InvalidEventError
        ``payload.s3Uri`` or ``outputConfig`` is not an S3 URI, ``outputConfig`` is not a folder
        holding the request, or the request is not a JSON array.
    botocore.exceptions.ClientError
        The request cannot be read or a mask cannot be written: Ground Truth retries the batch.
    """
    try:
        request_uri = parse_s3_uri(event.payload.s3_uri)
        root = (
            parse_s3_uri(event.output_config)
            if event.output_config
            else layout.annotations_root_from_request(request_uri)
        )
    except InvalidS3UriError as exc:
        raise InvalidEventError(f"PostAnnotationEvent: {exc}") from None
    # GT's outputConfig is <job>/annotations and the request lies under it; masks are written
    # under outputConfig, so one pointing elsewhere would write outside the job.
    if root.bucket != request_uri.bucket or not request_uri.key.startswith(root.key.rstrip("/") + "/"):
        raise InvalidEventError("PostAnnotationEvent: outputConfig is not the folder of payload.s3Uri's job")
    try:
        items = get_json(s3, request_uri)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidEventError("PostAnnotationEvent: the consolidation request is not JSON") from None
    if not isinstance(items, list):
        raise InvalidEventError("PostAnnotationEvent: the consolidation request is not a JSON array")
    ctx = BatchContext(
        s3=s3,
        attribute=event.label_attribute_name,
        categories=tuple(event.label_categories) if event.label_categories else None,
        output_root=root,
        timestamp=layout.request_timestamp(request_uri),
    )
    result = BatchResult()
    for n, raw in enumerate(items):
        try:
            item = ConsolidationItem.model_validate(raw)
        except ValidationError as exc:
            result.skipped_items.append(f"item {n}: {describe_errors(exc)}")
            continue
        obj = consolidate_object(item, ctx)
        result.objects.append(obj)
        result.response.append(
            {
                "datasetObjectId": obj.dataset_object_id,
                "consolidatedAnnotation": {"content": {ctx.attribute: obj.content}},
            }
        )
    return result


def consolidate_object(item: ConsolidationItem, ctx: BatchContext) -> ObjectResult:
    """Decode, vote and write one data object's mask; bad annotations are excluded with a reason."""
    excluded: list[Exclusion] = []
    answers: list[tuple[str, SegmentationAnswer]] = []
    for raw in item.annotations:
        worker, answer = _read_annotation(raw, ctx.s3)
        if isinstance(answer, SegmentationAnswer):
            answers.append((worker, answer))
        else:
            excluded.append(Exclusion(worker, answer))
    answers.sort(key=lambda wa: wa[0])  # worker-ID order: the result must not depend on arrival order
    try:
        table = build_class_table(ctx.categories, [a.label_mappings for _, a in answers])
    except InvalidLabelSetError as exc:
        excluded.extend(Exclusion(w, str(exc)) for w, _ in answers)
        answers = []
    masks: list[tuple[str, np.ndarray]] = []
    for worker, answer in answers:
        palette = [(table.index(name), color) for name, color in answer.label_mappings.items()]
        try:
            masks.append((worker, decode_mask(answer.png, palette, size=answer.size)))
        except InvalidMaskError as exc:
            excluded.append(Exclusion(worker, str(exc)))
    masks = _same_size(masks, excluded)
    excluded.sort(key=lambda e: e.worker_id)
    if not masks:
        why = "; ".join(f"{e.worker_id}: {e.reason}" for e in excluded) or "no annotations"
        failed: dict[str, Any] = {
            "status": "failed",
            "failure-reason": f"no usable annotation: {why}",
            "workers": [],
            "excluded": [e.as_json() for e in excluded],
        }
        return ObjectResult(item.dataset_object_id, failed, excluded)
    voted = vote([m for _, m in masks])
    agreement = None if voted.agreement is None else round(voted.agreement, 4)
    mask_uri = layout.consolidated_mask(ctx.output_root, item.dataset_object_id, ctx.timestamp)
    put_bytes(
        ctx.s3,
        mask_uri,
        encode_mask(voted.mask, table.colors),
        "image/png",
        metadata=_mask_metadata(item),
    )
    height, width = voted.mask.shape
    content: dict[str, Any] = {
        "status": "consolidated",
        "mask-ref": str(mask_uri),
        "internal-color-map": table.color_map(1.0 if agreement is None else agreement),
        "image-size": {"width": width, "height": height},
        "workers": [w for w, _ in masks],
        "agreement": agreement,
        "excluded": [e.as_json() for e in excluded],
    }
    return ObjectResult(item.dataset_object_id, content, excluded, agreement)


def _read_annotation(raw: Any, s3: Any) -> tuple[str, SegmentationAnswer | str]:
    """One annotation entry -> (worker ID, answer or the reason it cannot be used)."""
    worker = raw.get("workerId") if isinstance(raw, dict) else None
    worker = worker if isinstance(worker, str) and worker else "unknown-worker"
    try:
        ann = Annotation.model_validate(raw)
    except ValidationError as exc:
        return worker, f"malformed annotation: {describe_errors(exc)}"
    data = ann.annotation_data
    try:
        if data is None or (data.content is None and data.s3_uri is None):
            raise InvalidAnnotationError("missing annotation: no annotationData content or s3Uri")
        content: Any = data.content
        if data.content is None:
            content = _fetch_annotation(s3, str(data.s3_uri)).decode("utf-8", errors="replace")
        if isinstance(content, str):
            if not content.strip():
                raise InvalidAnnotationError("empty answer: annotationData.content is empty")
            try:
                content = json.loads(content)
            except json.JSONDecodeError as exc:
                raise InvalidAnnotationError(f"annotationData.content is not JSON ({exc.msg})") from None
        return worker, parse_answer(content)
    except GtauditError as exc:
        return worker, str(exc)


def _fetch_annotation(s3: Any, uri: str) -> bytes:
    """The bytes of an annotation given by ``annotationData.s3Uri``."""
    try:
        return get_bytes(s3, parse_s3_uri(uri), max_bytes=MAX_ANSWER_BYTES)
    except InvalidS3UriError as exc:
        raise InvalidAnnotationError(f"annotationData.s3Uri: {exc}") from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise InvalidAnnotationError(f"annotationData.s3Uri is unreadable ({code})") from None
    except (BotoCoreError, ValueError) as exc:
        raise InvalidAnnotationError(f"annotationData.s3Uri is unreadable ({type(exc).__name__})") from None


def _same_size(masks: list[tuple[str, np.ndarray]], excluded: list[Exclusion]) -> list[tuple[str, np.ndarray]]:
    """Keep the masks of the most common size (ties: the first worker's); exclude the others."""
    if len({m.shape for _, m in masks}) <= 1:
        return masks
    shapes = Counter(m.shape for _, m in masks)
    top = max(shapes.values())
    keep = next(m.shape for _, m in masks if shapes[m.shape] == top)
    for worker, m in masks:
        if m.shape != keep:
            excluded.append(
                Exclusion(worker, f"mask is {m.shape[1]}x{m.shape[0]}, the other workers' are {keep[1]}x{keep[0]}")
            )
    return [(w, m) for w, m in masks if m.shape == keep]


def _mask_metadata(item: ConsolidationItem) -> dict[str, str]:
    """S3 user metadata that leads from the mask back to its original image."""
    meta = {"dataset-object-id": urllib.parse.quote(item.dataset_object_id, safe="")}
    source = item.data_object.get("s3Uri") or item.data_object.get("source-ref")
    if isinstance(source, str) and source:
        meta["source-ref"] = urllib.parse.quote(source, safe=":/")
    return meta
