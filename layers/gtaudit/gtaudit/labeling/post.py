"""The labeling stage's consolidation (post-annotation) step: several workers' masks -> one voted mask.

``consolidate_batch`` reads the batch with the shared reader (``gtaudit.consolidation``), then per
data object: reads each worker's segmentation answer (``read_segmentation``), fixes the class table,
decodes and votes the masks (``gtaudit.labeling.masks``, where the colour, vote and agreement rules
are written down), writes the voted mask as an indexed PNG at
``<annotations>/consolidated-annotation/output/<name>_<timestamp>.png`` and answers with a
``ConsolidatedLabel``. An annotation that cannot be used is excluded with a reason; an object left
with none gets a ``failed`` label; neither affects the other objects.

``<name>`` is the image's own stem, made safe (``gtaudit.names.stem_of``; an inline text object
keeps its ``datasetObjectId``), so ``猫 の 写真 (1).jpg`` gets ``猫 の 写真 (1)_<timestamp>.png``.
Two images of one job may share a stem (``a/cat.jpg``, ``b/cat.jpg``), in one batch or in two,
and a batch does not know the others, so each name is claimed in S3 before it is used
(``claim_name``): a conditional write of ``output/names/<name, case-folded>.json``
(``layout.name_claim``) that fails if the name is taken. Taken by the same object (a retried
batch, a redo) it is this object's; taken by another, the next of ``gtaudit.names.name_candidates``
is tried: ``cat-<4 hex of the source URI>``, the name the run's start gave the object when it saw
the collision.

Scores (``gtaudit.quality``): with two usable workers or more, each worker's mask is scored
against the vote, from the arrays the vote used (``ConsolidatedLabel.scores``). A gold object
(its image URI in the run's ``gtaudit.gold`` index, read once per batch) also has each worker
scored against its truth (``ConsolidatedLabel.gold``); a seeded one gets its shown mask as the
consolidated mask in place of the vote, so the audit judges a mask of known defect. An unusable
truth or shown mask costs only that (``gold.failure-reason``), never the vote or the batch. Both
kinds of scores also go to ``consolidated-annotation/scores/<name>.json`` (``layout.scores_file``,
``ScoresFile``), which the worktime function records per worker. Nothing about gold is logged.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gtaudit import layout
from gtaudit.consolidation import consolidation_threads, ordered_map, read_answers, read_batch, response_entry
from gtaudit.exceptions import (
    GtauditError,
    InvalidAnnotationError,
    InvalidImageError,
    InvalidLabelSetError,
    InvalidMaskError,
    InvalidS3UriError,
    S3ObjectUnavailableError,
)
from gtaudit.gold import GoldEntry, GoldIndex, load_index
from gtaudit.labeling.masks import ClassTable, build_class_table, decode_indexed, decode_mask, encode_mask, vote
from gtaudit.labels import BACKGROUND, BACKGROUND_COLOR, normalize_color
from gtaudit.models.groundtruth import ConsolidationItem, PostAnnotationEvent
from gtaudit.models.stages import (
    ColorMapEntry,
    ConsolidatedLabel,
    Exclusion,
    GoldResult,
    ImageSize,
    ScoresFile,
    WorkerScore,
)
from gtaudit.names import name_candidates, parse_job_name, safe_stem, stem_of
from gtaudit.overlay.render import displayed_size
from gtaudit.quality import brief_scores, score_workers
from gtaudit.s3io import get_bytes, get_metadata, put_bytes, put_json
from gtaudit.s3uri import S3Uri, parse_s3_uri

SEGMENTATION_ELEMENT = "crowd-semantic-segmentation"
MAX_IMAGE_BYTES = 200 * 1024 * 1024  # an original larger than this is not read to check mask sizes


@dataclass(frozen=True, slots=True)
class SegmentationAnswer:
    """One worker's decoded answer: the PNG bytes, its label colours and the declared image size."""

    png: bytes
    label_mappings: dict[str, str]
    size: tuple[int, int] | None  # (width, height)


def read_segmentation(content: Any) -> SegmentationAnswer:
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


@dataclass(slots=True)
class LabeledObject:
    """One data object's consolidated label."""

    dataset_object_id: str
    label: ConsolidatedLabel

    @property
    def consolidated(self) -> bool:
        """Whether a mask was written."""
        return self.label.status == "consolidated"

    @property
    def content(self) -> dict[str, Any]:
        """The label as JSON, as the Lambda answers it under the job's label attribute."""
        return self.label.dump()


@dataclass(slots=True)
class BatchResult:
    """The Lambda's answer plus what happened, for logs and metrics."""

    response: list[dict[str, Any]] = field(default_factory=list)
    objects: list[LabeledObject] = field(default_factory=list)
    skipped_items: list[str] = field(default_factory=list)  # items without a usable datasetObjectId


@dataclass(frozen=True, slots=True)
class BatchContext:
    """What every object of a batch shares."""

    s3: Any
    attribute: str
    categories: tuple[str, ...] | None
    output_root: S3Uri
    timestamp: str
    configured: Mapping[str, str] | None = None  # the label set's colours, for labels nobody painted
    job: str = ""  # the labeling job's name, as the scores files give it
    gold: GoldIndex | None = None  # the run's gold objects
    gold_entries: Mapping[str, GoldEntry] = field(default_factory=dict)  # ``gold`` by image URI


def consolidate_batch(
    event: PostAnnotationEvent, s3: Any, label_colors: Mapping[str, str] | None = None
) -> BatchResult:
    """Consolidate one Ground Truth batch: one response entry per ``datasetObjectId``.

    Parameters
    ----------
    event
        The parsed consolidation event.
    s3
        A boto3 S3 client.
    label_colors
        The label set's ``{label: "#rrggbb"}``: a category no worker painted keeps its colour.

    Returns
    -------
    BatchResult
        ``response`` is what the Lambda returns. A bad annotation is excluded with a reason, an
        object with none left gets a ``failed`` entry; neither affects the other objects.

    Raises
    ------
    InvalidEventError
        ``payload.s3Uri`` is not an S3 URI, or the request is not a JSON array. (An output location
        that cannot be known fails each object with the reason, never the batch.)
    botocore.exceptions.ClientError
        The request cannot be read or a mask cannot be written: Ground Truth retries the batch.
    """
    batch = read_batch(s3, event)
    try:
        output_config = parse_s3_uri(event.output_config) if event.output_config else None
    except InvalidS3UriError:
        output_config = None
    root = layout.annotations_root(batch.request, output_config)
    if root is None:
        # One answer per object, each with the reason (Ground Truth records it); never the whole batch.
        why = "no known place for the consolidated masks: neither outputConfig nor payload.s3Uri names the job's folder"
        result = BatchResult(skipped_items=batch.skipped)
        for item in batch.items:
            label = ConsolidatedLabel(status="failed", failure_reason=why, workers=[], excluded=[])
            result.objects.append(LabeledObject(item.dataset_object_id, label))
            result.response.append(response_entry(item.dataset_object_id, event.label_attribute_name, label))
        return result
    job = job_name_of(event, root)
    gold = batch_gold(s3, job, batch.request.bucket)
    ctx = BatchContext(
        s3=s3,
        attribute=event.label_attribute_name,
        categories=tuple(event.label_categories) if event.label_categories else None,
        output_root=root,
        timestamp=layout.request_timestamp(batch.request),
        configured=label_colors,
        job=job,
        gold=gold,
        gold_entries=gold.by_source() if gold else {},
    )
    result = BatchResult(skipped_items=batch.skipped)
    for obj in ordered_map(lambda item: consolidate_masks(item, ctx), batch.items, threads=consolidation_threads()):
        result.objects.append(obj)
        result.response.append(response_entry(obj.dataset_object_id, ctx.attribute, obj.label))
    return result


def consolidate_masks(item: ConsolidationItem, ctx: BatchContext) -> LabeledObject:
    """Decode, vote and write one data object's mask; bad annotations are excluded with a reason."""
    excluded: list[Exclusion] = []
    answers: list[tuple[str, SegmentationAnswer]] = []
    for got in read_answers(ctx.s3, item):
        if isinstance(got, Exclusion):
            excluded.append(got)
            continue
        try:
            answers.append((got.worker_id, read_segmentation(got.content)))
        except GtauditError as exc:
            excluded.append(Exclusion(worker_id=got.worker_id, reason=str(exc)))
    answers.sort(key=lambda wa: wa[0])  # worker-ID order: the result must not depend on arrival order
    try:
        table = build_class_table(ctx.categories, [a.label_mappings for _, a in answers], ctx.configured)
    except InvalidLabelSetError as exc:
        excluded.extend(Exclusion(worker_id=w, reason=str(exc)) for w, _ in answers)
        answers = []
    masks: list[tuple[str, np.ndarray]] = []
    shown = shown_size(ctx.s3, item) if answers else None
    for worker, answer in answers:
        palette = [(table.index(name), color) for name, color in answer.label_mappings.items()]
        try:
            masks.append((worker, decode_mask(answer.png, palette, size=shown or answer.size)))
        except InvalidMaskError as exc:
            excluded.append(Exclusion(worker_id=worker, reason=str(exc)))
    masks = _same_size(masks, excluded)
    excluded.sort(key=lambda e: e.worker_id)
    if not masks:
        why = "; ".join(f"{e.worker_id}: {e.reason}" for e in excluded) or "no annotations"
        failed = ConsolidatedLabel(
            status="failed", failure_reason=f"no usable annotation: {why}", workers=[], excluded=excluded
        )
        return LabeledObject(item.dataset_object_id, failed)
    voted = vote([m for _, m in masks])
    agreement = None if voted.agreement is None else round(voted.agreement, 4)
    consensus = score_workers(voted.mask, masks, table.names, candidates=voted.disputed) if len(masks) > 1 else None
    entry = ctx.gold_entries.get(_source_of(item) or "")
    gold, seeded = gold_label(ctx, entry, table, masks) if entry else (None, None)
    name = claim_name(ctx, item)
    mask_uri = layout.consolidated_mask(ctx.output_root, name, ctx.timestamp)
    png = encode_mask(voted.mask, table.colors) if seeded is None else seeded
    put_bytes(ctx.s3, mask_uri, png, "image/png", metadata=mask_metadata(item))
    if consensus or (gold and gold.scores):
        write_scores(ctx, item, name, consensus, gold)
    height, width = voted.mask.shape
    label = ConsolidatedLabel(
        status="consolidated",
        mask_ref=str(mask_uri),
        color_map={
            k: ColorMapEntry.model_validate(v)
            for k, v in table.color_map(1.0 if agreement is None else agreement).items()
        },
        image_size=ImageSize(width=width, height=height),
        workers=[w for w, _ in masks],
        agreement=agreement,
        excluded=excluded,
    )
    if consensus:
        label.scores = brief_scores(consensus)
    if gold:
        label.gold = gold.model_copy(update={"scores": brief_scores(gold.scores)}) if gold.scores else gold
    return LabeledObject(item.dataset_object_id, label)


def write_scores(
    ctx: BatchContext,
    item: ConsolidationItem,
    name: str,
    consensus: dict[str, WorkerScore] | None,
    gold: GoldResult | None,
) -> None:
    """Write the object's ``ScoresFile`` (every key, workers in ID order: a retry writes the same bytes)."""
    record = ScoresFile(
        version=1,
        job=ctx.job,
        dataset_object_id=item.dataset_object_id,
        source_ref=_source_of(item),
        gold=gold is not None,
        consensus=consensus,
        truth=gold.scores if gold and gold.scores else None,
        seeded=gold.seeded if gold else None,
    )
    put_json(ctx.s3, layout.scores_file(ctx.output_root, name), record.dump())


def job_name_of(event: PostAnnotationEvent, annotations: S3Uri) -> str:
    """The labeling job's name: the end of its ARN, else the folder that holds ``annotations``."""
    if event.labeling_job_arn:
        return event.labeling_job_arn.rsplit("/", 1)[-1]
    parts = annotations.key.rstrip("/").split("/")
    return parts[-2] if len(parts) > 1 else ""


def batch_gold(s3: Any, job: str, bucket: str) -> GoldIndex | None:
    """The gold index of the job's run: one GET per batch (a 404 for a run without gold).

    ``None`` without a GET for a job gtaudit did not name: it belongs to no run.

    Raises
    ------
    botocore.exceptions.ClientError
        The index cannot be read now: Ground Truth retries the batch.
    """
    parts = parse_job_name(job)
    return None if parts is None else load_index(s3, bucket, parts.run)


def gold_label(
    ctx: BatchContext, entry: GoldEntry, table: ClassTable, masks: list[tuple[str, np.ndarray]]
) -> tuple[GoldResult, bytes | None]:
    """A gold object's workers against its truth and, seeded, the PNG to write in place of the vote.

    The truth's classes are matched to the object's by name (a truth class no worker or category
    has is scored too). An unusable truth leaves ``scores`` empty; an unusable shown mask leaves the
    vote as the mask and ``seeded`` unset; ``failure-reason`` says why.
    """
    labels = ctx.gold.labels if ctx.gold else []
    names = (BACKGROUND, *labels)
    height, width = masks[0][1].shape
    scoring = (*table.names, *(n for n in names if n not in table.names))
    problems: list[str] = []
    scores: dict[str, WorkerScore] = {}
    try:
        truth, _ = decode_indexed(_gold_png(ctx.s3, entry.truth_ref), names, scoring, size=(width, height))
        scores = score_workers(truth, masks, scoring)
    except (GtauditError, ValueError) as exc:
        problems.append(f"truth unusable: {exc}")
    seeded = None
    if entry.role == "seeded":
        try:
            seeded = seeded_png(ctx.s3, entry, names, table, (width, height))
        except (GtauditError, ValueError) as exc:
            problems.append(f"shown mask unusable: {exc}")
    result = GoldResult(scores=scores, seeded=entry.defect if seeded is not None else None)
    if problems:
        result.failure_reason = "; ".join(problems)
    return result, seeded


def seeded_png(s3: Any, entry: GoldEntry, names: tuple[str, ...], table: ClassTable, size: tuple[int, int]) -> bytes:
    """A seeded object's shown mask as its consolidated mask: the same bytes when the shown PNG's
    indices and colours are already the object's class table, else re-encoded in that table."""
    if entry.shown_ref is None or entry.defect is None:
        raise ValueError("a seeded gold object needs a shown mask and a defect")
    png = _gold_png(s3, entry.shown_ref)
    classes, colors = decode_indexed(png, names, table.names, size=size)
    if table.names[: len(names)] == names and colors == table.colors[: len(names)]:
        return png
    return encode_mask(classes, table.colors)


def _gold_png(s3: Any, ref: str) -> bytes:
    return get_bytes(s3, parse_s3_uri(ref), max_bytes=MAX_IMAGE_BYTES)


def shown_size(s3: Any, item: ConsolidationItem) -> tuple[int, int] | None:
    """The size workers saw the object's image at (EXIF orientation applied), or ``None`` if unknown.

    A mask at any other size (a browser that painted the stored, un-rotated pixels; a tool that
    scaled the image) is excluded here with that reason, rather than failing the overlay later. An
    image that cannot be read leaves the check to each worker's declared ``inputImageProperties``:
    the overlay stage then fails that one object with the cause ("source image not found: ...").
    """
    source = _source_of(item)
    if source is None:
        return None  # inline text: no image
    try:
        return displayed_size(get_bytes(s3, parse_s3_uri(source), max_bytes=MAX_IMAGE_BYTES))
    except (InvalidS3UriError, InvalidImageError, S3ObjectUnavailableError, ValueError):
        return None


def _same_size(masks: list[tuple[str, np.ndarray]], excluded: list[Exclusion]) -> list[tuple[str, np.ndarray]]:
    """Keep the masks of the most common size (ties: the first worker's); exclude the others."""
    if len({m.shape for _, m in masks}) <= 1:
        return masks
    shapes = Counter(m.shape for _, m in masks)
    top = max(shapes.values())
    keep = next(m.shape for _, m in masks if shapes[m.shape] == top)
    for worker, m in masks:
        if m.shape != keep:
            why = f"mask is {m.shape[1]}x{m.shape[0]}, the other workers' are {keep[1]}x{keep[0]}"
            excluded.append(Exclusion(worker_id=worker, reason=why))
    return [(w, m) for w, m in masks if m.shape == keep]


def claim_name(ctx: BatchContext, item: ConsolidationItem) -> str:
    """The name of this object's mask and overlay in its job, claimed in S3 (see the module's docstring).

    The first of ``name_candidates`` whose claim this object writes, or already holds: the same
    ``dataset-object-id`` and ``source-ref`` (the mask's own metadata). Each object holds one
    claim at most, so the candidates run out of other owners before the job runs out of objects.

    Raises
    ------
    botocore.exceptions.ClientError
        A claim cannot be written or read, or two batches raced for it (409): Ground Truth retries
        the batch, which finds its claims and writes the same keys.
    """
    source = _source_of(item)
    if source is None:
        stem, identity = safe_stem(item.dataset_object_id), item.dataset_object_id
    else:
        stem, identity = stem_of(_file_name(source)), source
    owner = mask_metadata(item)
    candidates = name_candidates(stem, identity)
    while True:
        name = next(candidates)
        claim = layout.name_claim(ctx.output_root, name)
        record = {"name": name, "dataset-object-id": item.dataset_object_id, "source-ref": source}
        if put_json(ctx.s3, claim, record, metadata=owner, if_absent=True):
            return name
        if get_metadata(ctx.s3, claim) == owner:
            return name


def _source_of(item: ConsolidationItem) -> str | None:
    """The data object's image URI as Ground Truth gives it (``s3Uri``, or ``source-ref``); ``None`` for inline text."""
    source = item.data_object.get("s3Uri") or item.data_object.get("source-ref")
    return source if isinstance(source, str) and source else None


def _file_name(source: str) -> str:
    """The last path segment of an image URI, as given: Ground Truth passes the manifest's URI unchanged."""
    return source.rstrip("/").rsplit("/", 1)[-1]


def mask_metadata(item: ConsolidationItem) -> dict[str, str]:
    """S3 user metadata that leads from the mask back to its original image."""
    meta = {"dataset-object-id": urllib.parse.quote(item.dataset_object_id, safe="")}
    source = _source_of(item)
    if source is not None:
        meta["source-ref"] = urllib.parse.quote(source, safe=":/")
    return meta
