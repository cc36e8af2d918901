"""Start a run: upload the images if local, write the input manifest, create the first labeling job."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "run": self.run_id,
            "job": self.job_name,
            "manifest": self.manifest,
            "objects": self.objects,
            "uploaded": self.uploaded,
            "images": self.images,
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


def upload_folder(s3: Any, folder: Path, target: S3Uri) -> int:
    """Upload every image under ``folder`` (recursively, sorted) to ``target``; return the count."""
    n = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and _is_image(p.name)):
        key = target.join(path.relative_to(folder).as_posix()).key
        s3.upload_file(str(path), target.bucket, key, ExtraArgs={"ContentType": content_type(path.name)})
        n += 1
    return n


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


def start_run(
    *,
    s3: Any,
    sagemaker: Any,
    table: Any,
    config: PipelineConfig,
    images: str,
    labels: Sequence[str] | None = None,
    run_id: str | None = None,
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

    Returns
    -------
    RunStarted

    Raises
    ------
    ValueError
        No images found, a bad run ID, or the config lacks what CreateLabelingJob needs.
    """
    run_id = checked_run_id(run_id)
    label_names = run_labels(config, labels)  # before anything is uploaded
    uploaded = 0
    if images.startswith("s3://"):
        prefix = parse_s3_uri(images)
    else:
        folder = Path(images)
        if not folder.is_dir():
            raise ValueError(f"--images {images!r} is neither an s3:// prefix nor a folder")
        prefix = images_prefix(config.bucket, run_id)
        uploaded = upload_folder(s3, folder, prefix)
    categories = write_label_categories(s3, config.bucket, run_id, label_names)
    manifest = mf.job_input(config.bucket, run_id, JobKind.LABELING, 1)
    uris = list(list_images(s3, prefix))  # every name must be known to tell colliding ones apart
    with mf.ManifestWriter(s3, manifest) as out:
        for uri, oid in zip(uris, unique_stems((str(u), u.name) for u in uris), strict=True):
            out.write({"source-ref": str(uri), "object-id": oid})
    if out.count == 0:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {prefix}")
    config = run_templates(config, s3)
    state = PipelineState(table)
    state.create_run(
        run_id,
        objects_in=out.count,
        labels=label_names,
        images=str(prefix),
        label_category_uri=str(categories),
        input_manifest=str(manifest),
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
    return RunStarted(run_id, name, str(manifest), out.count, uploaded, str(prefix))
