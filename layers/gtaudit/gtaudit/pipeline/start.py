"""Start a run: upload the images if local, write the input manifest, create the first labeling job.

With gold objects (known-correct masks, ``gtaudit.gold.GoldObject``), ``gtaudit.pipeline.gold_start``
checks them against the run, takes a share of the labeling job's lines from them, picks the ones
that test the auditors, and writes them under ``runs/<run>/gold/``; their lines are mixed into the
labeling manifest and look like every other line. A gold object is never an object of the run:
``objects_in`` and ``RunStarted.objects`` count the run's own images only.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig

from gtaudit.gold import GoldObject
from gtaudit.labels import parse_label_set
from gtaudit.models.jobs import JobKind
from gtaudit.names import unique_stems
from gtaudit.pipeline import manifests as mf
from gtaudit.pipeline.config import RUN_ID, PipelineConfig
from gtaudit.pipeline.launch import launch
from gtaudit.pipeline.state import PipelineState
from gtaudit.pipeline.templates import deployed_templates, ensure_templates
from gtaudit.s3uri import S3Uri, parse_s3_uri

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
UPLOAD_THREADS = 8  # images uploaded at a time by a start from a local folder
CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


@dataclass(frozen=True)
class RunStarted:
    """What ``start_run`` did."""

    run_id: str
    job_name: str
    manifest: str
    objects: int
    uploaded: int
    images: str
    gold: int = 0  # gold lines mixed into the labeling job (not objects of the run)
    seeded: int = 0  # of which the audit is shown a mask with a known defect (or the clean truth)
    gold_refused: list[dict[str, str]] = field(default_factory=list)  # {"name", "reason"}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "run": self.run_id,
            "job": self.job_name,
            "manifest": self.manifest,
            "objects": self.objects,
            "uploaded": self.uploaded,
            "images": self.images,
            "gold": self.gold,
            "seeded": self.seeded,
            "gold_refused": self.gold_refused,
        }


def new_run_id(now: datetime | None = None) -> str:
    """``20261124t101500-3f9c``: UTC time and 4 random hex digits."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dt%H%M%S}-{secrets.token_hex(2)}"


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def content_type(name: str) -> str:
    """The ``Content-Type`` an image is stored with, from its file name."""
    return CONTENT_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


def upload_folder(s3: Any, folder: Path, target: S3Uri) -> list[S3Uri]:
    """Upload every image under ``folder`` (recursively) to ``target``; return their URIs in key order.

    ``UPLOAD_THREADS`` images at a time, each in one thread (a large one in parts, one after the
    other): one image at a time waits out S3's latency per image (10,000 images took minutes). A
    failed upload is raised (the first in key order) once the uploads under way have ended; those
    not started by then are not started.
    """
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and _is_image(p.name))
    one_thread = TransferConfig(use_threads=False)

    def upload(path: Path) -> S3Uri:
        uri = target.join(path.relative_to(folder).as_posix())
        extra = {"ContentType": content_type(path.name)}
        s3.upload_file(str(path), uri.bucket, uri.key, ExtraArgs=extra, Config=one_thread)
        return uri

    with ThreadPoolExecutor(max_workers=UPLOAD_THREADS, thread_name_prefix="upload") as pool:
        uris = list(pool.map(upload, paths))
    return sorted(uris, key=lambda u: u.key)  # S3's listing order, which a start without upload uses


def images_prefix(bucket: str, run_id: str) -> S3Uri:
    """``s3://<bucket>/inputs/<run>/images``: where a run's local images are uploaded."""
    return S3Uri(bucket, f"inputs/{run_id}/images")


def list_images(s3: Any, prefix: S3Uri) -> Iterator[S3Uri]:
    """The images under an S3 prefix, in key order."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=prefix.bucket, Prefix=prefix.key):
        for obj in page.get("Contents", []):
            if _is_image(obj["Key"]):
                yield S3Uri(prefix.bucket, obj["Key"])


def run_labels(config: PipelineConfig, labels: Sequence[str] | None) -> list[str]:
    """The run's classes: the stack's ``LabelSet``; ``labels`` may only restate it.

    labeling_pre shows the stack's ``LabelSet`` (a stack parameter), so a run with other classes
    would label with one set and consolidate with another: refused, with how to change the set.
    """
    stack = parse_label_set(config.label_set or None).names
    if not labels:
        return stack
    wanted = list(labels)
    if config.label_set and wanted != stack:
        raise ValueError(
            f"--labels {wanted} differ from the stack's LabelSet {stack}; the labeling UI shows the stack's set: "
            "redeploy with --parameter-overrides LabelSet='[...]' to change it"
        )
    return wanted


def checked_run_id(run_id: str | None) -> str:
    """``run_id`` if it is one of ours (``20261124t101500-3f9c``), a new one if None; else ``ValueError``."""
    run_id = run_id or new_run_id()
    if not RUN_ID.match(run_id):
        raise ValueError(f"run id {run_id!r} must look like 20261124t101500-3f9c")
    return run_id


def write_label_categories(s3: Any, bucket: str, run_id: str, names: Sequence[str]) -> S3Uri:
    """The run's label category file (``LabelCategoryConfigS3Uri`` of its labeling and rework jobs)."""
    uri = mf.run_root(bucket, run_id).join("label-categories.json")
    body = {"document-version": "2018-11-28", "labels": [{"label": n} for n in names]}
    s3.put_object(
        Bucket=bucket, Key=uri.key, ContentType="application/json", Body=json.dumps(body, ensure_ascii=False).encode()
    )
    return uri


def run_templates(config: PipelineConfig, s3: Any) -> PipelineConfig:
    """``config`` with the worker templates the deployment recorded, else this code's, where unset."""
    if config.labeling_template and config.audit_template:
        return config
    uris = deployed_templates(s3, config.bucket) or ensure_templates(s3, config.bucket)
    return config.with_(
        labeling_template=config.labeling_template or uris["labeling"],
        audit_template=config.audit_template or uris["audit"],
    )


def _run_images(s3: Any, images: str, target: S3Uri, *, gold: bool) -> tuple[S3Uri, list[S3Uri], int]:
    """``(prefix, image URIs in key order, how many were uploaded)`` of ``--images``.

    With gold, a run on an S3 prefix keeps ``inputs/<run>/`` (where its gold images go) out of its
    own images, so a retried start does not take them for the run's; a prefix inside it is refused.

    Raises
    ------
    ValueError
        Neither an S3 prefix nor a folder, no images, or the run's own upload folder as the prefix.
    """
    if images.startswith("s3://"):
        prefix = parse_s3_uri(images)
        own = f"{target.key.rsplit('/', 1)[0]}/"
        if gold and f"{prefix.key.rstrip('/')}/".startswith(own):
            raise ValueError(f"--images {images} is this run's own upload folder, where its gold images go")
        listed = list_images(s3, prefix)
        uris, uploaded = [u for u in listed if not (gold and u.bucket == target.bucket and u.key.startswith(own))], 0
    else:
        folder = Path(images)
        if not folder.is_dir():
            raise ValueError(f"--images {images!r} is neither an s3:// prefix nor a folder")
        prefix = target
        uris = upload_folder(s3, folder, prefix)
        uploaded = len(uris)
    if not uris:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {prefix}")
    return prefix, uris, uploaded


def start_run(
    *,
    s3: Any,
    sagemaker: Any,
    table: Any,
    config: PipelineConfig,
    images: str,
    labels: Sequence[str] | None = None,
    run_id: str | None = None,
    gold: Sequence[GoldObject] = (),
    gold_share: float = 0.1,
    seed_share: float = 0.1,
) -> RunStarted:
    """Start a run.

    Parameters
    ----------
    s3, sagemaker
        boto3 clients (AWS, or the local runtime's endpoints).
    table
        The pipeline table (a boto3 DynamoDB ``Table``).
    config
        Bucket, table, job-name prefix, workteam, role, Lambda ARNs; template URIs are filled in from
        the deployment's ``templates/current.json``, else from this code's templates.
    images
        ``s3://bucket/prefix`` of existing images, or a local folder to upload to
        ``s3://<bucket>/inputs/<run>/images/``.
    labels
        The run's classes (the label category file of the labeling jobs); default the stack's
        ``LabelSet`` (``config.label_set``), which they must equal when it is known.
    run_id
        A fixed run ID (``20261124t101500-3f9c``) to make a retried start idempotent; new if None.
    gold
        Objects whose correct mask is known (``gtaudit_local.gold.read_gold`` reads them from a
        folder, a manifest or a COCO file). Each is checked against the run; a bad one is refused
        (``RunStarted.gold_refused``) and the run goes on without it.
    gold_share
        The share of the labeling job's lines that are gold, in [0, 1).
    seed_share
        The share of the round-1 audit job that is seeded (a gold object shown with a known
        defect, or as its clean truth), in [0, 1).

    Returns
    -------
    RunStarted

    Raises
    ------
    ValueError
        No images found, a bad run ID or share, or the config lacks what CreateLabelingJob needs.
    """
    # gold_start reads start_audit, which builds on this module: imported when a start runs.
    from gtaudit.pipeline import gold_start
    from gtaudit.pipeline.start_audit import run_label_set

    run_id = checked_run_id(run_id)
    gold_start.check_share(gold_share, "gold share")
    gold_start.check_share(seed_share, "seed share")
    label_set = run_label_set(config, labels)  # before anything is uploaded
    label_names = label_set.names
    usable, refused = gold_start.sort_out(gold, len(label_names))
    target = images_prefix(config.bucket, run_id)
    prefix, uris, uploaded = _run_images(s3, images, target, gold=bool(usable))
    count = gold_start.gold_count(len(uris), len(usable), gold_share)
    chosen = gold_start.choose(
        run_id,
        usable,
        count=count,
        seeded=gold_start.seeded_count(gold_start.expected_audited(config, len(uris)), count, seed_share),
        n_labels=len(label_names),
        taken={u.key[len(target.key) + 1 :].casefold() for u in uris if u.key.startswith(f"{target.key}/")},
    )
    gold_uris = [target.join(g.file_name) for g in chosen]
    # Gold IDs follow the run's stem rule, among the run's own names, so nothing sets them apart.
    ids = unique_stems([*((str(u), u.name) for u in uris), *((str(u), u.name) for u in gold_uris)])
    own_ids, gold_ids = ids[: len(uris)], ids[len(uris) :]
    if chosen:
        gold_start.write_gold(s3, config.bucket, run_id, label_set, chosen, gold_uris, gold_ids)
    categories = write_label_categories(s3, config.bucket, run_id, label_names)
    manifest = mf.job_input(config.bucket, run_id, JobKind.LABELING, 1)
    lines = gold_start.mixed(run_id, list(zip(uris, own_ids, strict=True)), list(zip(gold_uris, gold_ids, strict=True)))
    with mf.ManifestWriter(s3, manifest) as out:
        for uri, oid in lines:
            out.write({"source-ref": str(uri), "object-id": oid})
    config = run_templates(config, s3)
    state = PipelineState(table)
    seeded = gold_start.seeded_total(chosen)
    state.create_run(
        run_id,
        objects_in=len(uris),
        labels=label_names,
        images=str(prefix),
        label_category_uri=str(categories),
        input_manifest=str(manifest),
        gold=len(chosen),
        seeded=seeded,
    )
    name = launch(
        config,
        state,
        sagemaker,
        run_id=run_id,
        kind=JobKind.LABELING,
        round_no=1,
        manifest=manifest,
        objects=out.count,
        label_category_uri=str(categories),
    )
    return RunStarted(run_id, name, str(manifest), len(uris), uploaded, str(prefix), len(chosen), seeded, refused)
