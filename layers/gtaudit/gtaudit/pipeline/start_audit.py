"""Start a run at the audit stage, from labels that already exist (検品 of a delivery).

A reader of existing labels (``gtaudit_local.imports``: a Ground Truth output manifest, a COCO
file, a folder of masks) hands over each object either as an :class:`ImportedMask` (its image and
its mask as class indices in the run's order) or as a :class:`Refusal` with the reason. This module
puts every imported mask where a labeling job would have put it, in labeling_post's form, so that
from the audit on nothing can tell it from a mask the workers painted:

* the original stays where it is when it is in the data bucket; a local file is uploaded, and an
  image in another bucket copied, to ``inputs/<run>/images/<name><ext>`` (the stack's Lambdas may
  read the data bucket only: ``ALLOWED_BUCKETS``);
* the mask must have the size the image is *displayed* at (EXIF orientation applied), the size
  the labeling tool shows and the overlay draws; a mask of the stored, un-rotated size is refused
  for its orientation, any other size with both sizes;
* the mask is encoded with labeling_post's ``encode_mask`` in the run's colours and written with
  labeling_post's S3 metadata (``source-ref``, ``dataset-object-id``) under a job-shaped root,
  ``jobs/<prefix>-import-<run>/annotations/consolidated-annotation/output/<name>_<time>.png``,
  so the overlay Lambda renders it as any other (and ``OverlayEnsurer`` makes sure it has);
* the round-1 audit manifest holds one ``manifests.audit_line`` per object (labelers: who made
  the labels, as the source says, else ``import``; agreement unknown), the refused objects go to
  the run's failed part ``results/failed/<prefix>-import-<run>.manifest`` with their reasons;
* the run item counts every object in, refused ones included (``import_refused`` brings them into
  the summary's balance), and the round-1 audit job is launched.

From there the orchestrator's audit step carries the run as it carries any other: approved,
rework with the imported mask as ``initial-value``, or needs attention after the last round.

A start with a fixed run ID is idempotent: every key is deterministic, the run item and the job
are written once. If no object can be imported, no run is created.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from gtaudit import layout
from gtaudit.exceptions import GtauditError, InvalidS3UriError, S3ObjectUnavailableError, StepPendingError
from gtaudit.labeling.masks import encode_mask
from gtaudit.labeling.post import MAX_IMAGE_BYTES, mask_metadata
from gtaudit.labeling.pre import IMAGE_EXTENSIONS
from gtaudit.labels import BACKGROUND_COLOR, LabelSet, parse_label_set
from gtaudit.manifest import GTAUDIT_KEY
from gtaudit.models.groundtruth import ConsolidationItem
from gtaudit.models.jobs import JobKind
from gtaudit.overlay.jobs import render_mask_overlays, settings_from_env
from gtaudit.overlay.render import displayed_size
from gtaudit.pipeline import manifests as mf
from gtaudit.pipeline.config import PipelineConfig
from gtaudit.pipeline.launch import launch
from gtaudit.pipeline.overlays import OverlayEnsurer
from gtaudit.pipeline.start import (
    checked_run_id,
    content_type,
    images_prefix,
    run_labels,
    run_templates,
    write_label_categories,
)
from gtaudit.pipeline.state import PipelineState
from gtaudit.pipeline.step import HeldLines
from gtaudit.s3io import error_code, get_bytes, put_bytes
from gtaudit.s3uri import S3Uri, parse_s3_uri

IMPORT_LABELER = "import"  # the labelers of an object whose source does not name who labeled it


@dataclass(frozen=True, slots=True)
class ImportedMask:
    """One object of an audit-only run, as a reader of existing labels prepared it.

    ``classes`` is a 2-D ``uint8`` array: 0 background, *i* the run's label *i* (1-based).
    ``image`` is an ``s3://`` URI or a local file's path; ``name`` is the object's ID in the run.
    """

    name: str
    image: str
    classes: np.ndarray
    labelers: tuple[str, ...] = (IMPORT_LABELER,)


@dataclass(frozen=True, slots=True)
class Refusal:
    """An object that cannot be imported, and why; ``image`` when it is known."""

    name: str
    reason: str
    image: str | None = None


@dataclass(frozen=True)
class AuditRunStarted:
    """What ``start_audit_run`` did; ``job_name`` is None when nothing could be imported (no run)."""

    run_id: str
    import_job: str
    job_name: str | None
    manifest: str
    imported: int
    uploaded: int
    refused: list[Refusal] = field(default_factory=list)

    @property
    def objects(self) -> int:
        """Objects in: every object of the source, refused ones included."""
        return self.imported + len(self.refused)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "run": self.run_id,
            "job": self.job_name,
            "import": self.import_job,
            "manifest": self.manifest,
            "objects": self.objects,
            "imported": self.imported,
            "uploaded": self.uploaded,
            "refused": [{"object": r.name, "reason": r.reason} for r in self.refused],
        }


def run_label_set(config: PipelineConfig, labels: Sequence[str] | None) -> LabelSet:
    """The run's classes (``run_labels``) with the colours labeling_pre shows them in."""
    stack = parse_label_set(config.label_set or None)
    return LabelSet.from_names(run_labels(config, labels), stack.colors())


def import_name(config: PipelineConfig, run_id: str) -> str:
    """``<prefix>-import-<run>``: the job-shaped folder of a run's imported masks (not a Ground Truth job)."""
    return f"{config.prefix}-import-{run_id}"


def _timestamp(run_id: str) -> str:
    """The masks' timestamp, from the run ID (``2026-11-24T101500``), so a retried start writes the same keys."""
    return f"{run_id[:4]}-{run_id[4:6]}-{run_id[6:8]}T{run_id[9:15]}"


def read_file(s3: Any, ref: str, what: str, *, max_bytes: int) -> bytes:
    """The bytes of ``ref``, an ``s3://`` URI or a local file's path.

    Raises
    ------
    LookupError
        It is missing, unreadable or larger than ``max_bytes``; the message names ``what`` and ``ref``.
    """
    if ref.startswith("s3://"):
        try:
            return get_bytes(s3, parse_s3_uri(ref), max_bytes=max_bytes)
        except InvalidS3UriError as exc:
            raise LookupError(f"{what} reference {ref!r}: {exc}") from exc
        except S3ObjectUnavailableError as exc:
            raise LookupError(f"{what} not found or not readable ({error_code(exc)}): {ref}") from exc
        except ValueError as exc:  # larger than max_bytes
            raise LookupError(f"{what} too large: {exc}") from exc
    path = Path(ref)
    try:
        if path.stat().st_size > max_bytes:
            raise LookupError(f"{what} too large: {path} is over {max_bytes} bytes")
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise LookupError(f"{what} not found: {path}") from exc
    except OSError as exc:
        raise LookupError(f"{what} cannot be read: {path} ({exc.strerror or exc})") from exc


def _size_problem(mask: np.ndarray, image: bytes) -> str | None:
    """Why ``mask`` does not fit ``image`` as displayed, or None if it does."""
    shown = displayed_size(image)
    with Image.open(io.BytesIO(image)) as im:
        stored = im.size
    got = (mask.shape[1], mask.shape[0])
    if got == shown:
        return None
    if got == stored:
        return (
            f"orientation: the mask is {got[0]}x{got[1]}, the image's stored size, but the image is displayed "
            f"as {shown[0]}x{shown[1]} (EXIF orientation): the mask was drawn on the un-rotated pixels"
        )
    return f"size: the mask is {got[0]}x{got[1]}, the image is displayed as {shown[0]}x{shown[1]}"


class _Placer:
    """Reads each original, checks its mask against it and puts both where the run reads them."""

    def __init__(self, s3: Any, bucket: str, run_id: str) -> None:
        self.s3, self.bucket = s3, bucket
        self.inputs = images_prefix(bucket, run_id)
        self.uploaded = 0

    def place(self, obj: ImportedMask) -> S3Uri | Refusal:
        """The original's URI in the data bucket (uploaded or copied if need be), or why the object is refused."""
        suffix = PurePosixPath(obj.image).suffix.lower()
        if suffix not in IMAGE_EXTENSIONS:
            takes = ", ".join(IMAGE_EXTENSIONS)
            why = f"image type {suffix or '(none)'!r}: Ground Truth's segmentation tool takes {takes}"
            return Refusal(obj.name, why, obj.image)
        try:
            data = read_file(self.s3, obj.image, "image", max_bytes=MAX_IMAGE_BYTES)
            problem = _size_problem(obj.classes, data)
        except LookupError as exc:
            return Refusal(obj.name, str(exc), obj.image)
        except (GtauditError, OSError, SyntaxError, ValueError) as exc:
            return Refusal(obj.name, f"image cannot be read: {exc}", obj.image)
        if problem:
            return Refusal(obj.name, problem, obj.image)
        if obj.image.startswith(f"s3://{self.bucket}/"):
            return parse_s3_uri(obj.image)
        target = self.inputs.join(layout.key_segment(obj.name) + suffix)
        put_bytes(self.s3, target, data, content_type(target.name))
        self.uploaded += 1
        return target


def _renderer(s3: Any, bucket: str) -> Callable[[list[str]], None]:
    """Render overlays in this process, reading originals from the data bucket only (as the overlay Lambda)."""

    def render(masks: list[str]) -> None:
        settings = settings_from_env()
        render_mask_overlays(s3, masks, settings if settings.allowed else replace(settings, allowed=(bucket,)))

    return render


def start_audit_run(
    *,
    s3: Any,
    sagemaker: Any,
    table: Any,
    config: PipelineConfig,
    objects: Iterable[ImportedMask | Refusal],
    source: str,
    labels: Sequence[str] | None = None,
    run_id: str | None = None,
    lambda_client: Any = None,
    wait_seconds: float = 600.0,
) -> AuditRunStarted:
    """Start a run at the audit stage from existing labels.

    Parameters
    ----------
    s3, sagemaker, lambda_client
        boto3 clients (AWS, or the local runtime's endpoints). With ``lambda_client`` and
        ``config.overlay_function``, many overlays are rendered by the overlay function; else here.
    table
        The pipeline table (a boto3 DynamoDB ``Table``).
    config
        As for ``gtaudit.pipeline.start.start_run``.
    objects
        The source's objects in order, read lazily: one mask is held in memory at a time. Their
        classes must be in the order of ``run_label_set(config, labels)``.
    source
        What was imported (recorded on the run item, e.g. ``coco:annotations.json``).
    labels, run_id
        As for ``start_run``.
    wait_seconds
        How long to wait for overlays the overlay function renders.

    Returns
    -------
    AuditRunStarted

    Raises
    ------
    ValueError
        A bad run ID, labels that differ from the stack's, or the config lacks what CreateLabelingJob needs.
    StepPendingError
        Overlays still not rendered after ``wait_seconds``: start again with the same run ID.
    """
    run_id = checked_run_id(run_id)
    label_set = run_label_set(config, labels)
    colors = [BACKGROUND_COLOR, *(lb.color for lb in label_set.labels)]
    color_map = label_set.color_map()
    name = import_name(config, run_id)
    root = layout.job_root(mf.output_path(config.bucket, run_id), name)
    stamp = _timestamp(run_id)
    deadline = time.monotonic() + wait_seconds
    ensurer = OverlayEnsurer(
        s3,
        lambda_client,
        root,
        function=config.overlay_function if lambda_client is not None else "",
        render_inline=_renderer(s3, config.bucket),
        time_left=lambda: deadline - time.monotonic(),
        reserve_seconds=0.0,
    )
    placer = _Placer(s3, config.bucket, run_id)
    refused: list[Refusal] = []
    manifest = mf.job_input(config.bucket, run_id, JobKind.AUDIT, 1)
    with HeldLines() as held:
        for obj in objects:
            if isinstance(obj, Refusal):
                refused.append(obj)
                continue
            placed = placer.place(obj)
            if isinstance(placed, Refusal):
                refused.append(placed)
                continue
            held.hold(obj.name, "audit", _write_mask(s3, obj, placed, ensurer, colors, color_map, name, stamp))
        try:
            ensurer.finish()
        except StepPendingError as exc:  # every key is deterministic: the same run ID picks up where this stopped
            raise StepPendingError(f"{exc}; start again with --run-id {run_id}") from exc
        # Only now is every overlay known: an object whose overlay can never be rendered is refused alone.
        with mf.ManifestWriter(s3, manifest, write_empty=False) as audit:
            for oid, _, line in held:
                info = line[GTAUDIT_KEY]
                if info["mask"] in ensurer.failures:
                    refused.append(Refusal(oid, ensurer.failures[info["mask"]], info["original"]))
                else:
                    audit.write(line)
    if audit.count == 0:
        return AuditRunStarted(run_id, name, None, str(manifest), 0, placer.uploaded, refused)
    _write_refused(s3, config.bucket, run_id, name, refused)
    categories = write_label_categories(s3, config.bucket, run_id, label_set.names)  # for the rework jobs
    config = run_templates(config, s3)
    state = PipelineState(table)
    state.create_run(
        run_id,
        objects_in=audit.count + len(refused),
        labels=label_set.names,
        images=str(placer.inputs),
        label_category_uri=str(categories),
        input_manifest=str(manifest),
        source=source,
        import_job=name,
        import_refused=len(refused),
    )
    job = launch(
        config,
        state,
        sagemaker,
        run_id=run_id,
        kind=JobKind.AUDIT,
        round_no=1,
        manifest=manifest,
        objects=audit.count,
        label_category_uri=str(categories),
    )
    return AuditRunStarted(run_id, name, job, str(manifest), audit.count, placer.uploaded, refused)


def _write_mask(
    s3: Any,
    obj: ImportedMask,
    original: S3Uri,
    ensurer: OverlayEnsurer,
    colors: list[str],
    color_map: dict[str, Any],
    import_job: str,
    stamp: str,
) -> dict[str, Any]:
    """Write one object's mask as labeling_post writes a consolidated one; return its audit line."""
    mask = layout.consolidated_mask(ensurer.job_root.join("annotations"), obj.name, stamp)
    # labeling_post's own metadata function, on the data object a labeling job would have had,
    # so the overlay Lambda finds the original exactly as it finds a consolidated mask's.
    item = ConsolidationItem.model_validate({"datasetObjectId": obj.name, "dataObject": {"source-ref": str(original)}})
    put_bytes(s3, mask, encode_mask(obj.classes, colors), "image/png", metadata=mask_metadata(item))
    return mf.audit_line(
        object_id=obj.name,
        round_no=1,
        original=str(original),
        mask=str(mask),
        overlay=str(ensurer.overlay_for(mask)),
        color_map=color_map,
        labelers=list(obj.labelers),
        agreement=None,
        labeling_job=import_job,
    )


def _write_refused(s3: Any, bucket: str, run_id: str, import_job: str, refused: list[Refusal]) -> None:
    """The refused objects, each with its reason, as the run's failed part of the import."""
    with mf.ManifestWriter(s3, mf.part(bucket, run_id, "failed", import_job)) as failed:
        for r in refused:
            in_s3 = r.image is not None and r.image.startswith("s3://")
            failed.write(
                mf.outcome_line(
                    object_id=r.name,
                    original=r.image if in_s3 else None,
                    outcome="failed",
                    round_no=1,
                    job=import_job,
                    reason=r.reason,
                    stage="import",
                    image=None if in_s3 else r.image,
                )
            )
