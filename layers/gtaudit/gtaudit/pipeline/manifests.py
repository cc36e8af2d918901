"""Where a run keeps its manifests in S3, a constant-memory manifest writer, and the line shapes.

Per run, under ``s3://<bucket>/runs/<run>/``:

* ``manifests/r1/labeling.manifest``, ``manifests/r<N>/rework.manifest``, ``manifests/r<N>/audit.manifest``:
  the input of each job;
* ``results/{accepted,needs-attention,failed}/<job>.manifest``: one part file per step and job,
  always written whole under a deterministic key, so a retried step overwrites its own part and
  can never add a line twice;
* ``accepted.manifest``, ``needs-attention.manifest``, ``failed.manifest``: the cumulative
  manifests, rebuilt from the part files (in job order) whenever a step finishes;
* ``summary.json``: the final summary. Ground Truth writes each job under ``s3://<bucket>/jobs/<job>/``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from types import TracebackType
from typing import IO, Any

from gtaudit.gold import SEEDED_KEY
from gtaudit.manifest import GTAUDIT_KEY, OBJECT_ID_KEY, BadLine, dumps_line, iter_manifest
from gtaudit.models.jobs import JobKind
from gtaudit.s3io import iter_lines
from gtaudit.s3uri import S3Uri

OUTCOMES = ("accepted", "needs-attention", "failed")
SEGMENTATION_TYPE = "groundtruth/semantic-segmentation"
_SPOOL_BYTES = 8 * 1024 * 1024  # kept in memory below this, spilled to /tmp above


def read_lines(s3: Any, uri: S3Uri) -> Iterator[dict[str, Any] | BadLine]:
    """Each line of a manifest in S3, streamed and parsed; a line that is not a JSON object is a ``BadLine``."""
    for item in iter_manifest(iter_lines(s3, uri)):
        yield item if isinstance(item, BadLine) else item.data


def run_root(bucket: str, run_id: str) -> S3Uri:
    """``s3://<bucket>/runs/<run>``."""
    return S3Uri(bucket, f"runs/{run_id}")


def job_input(bucket: str, run_id: str, kind: JobKind, round_no: int) -> S3Uri:
    """The input manifest of a job: ``manifests/r<N>/<labeling|rework|audit>.manifest``."""
    return run_root(bucket, run_id).join("manifests", f"r{round_no}", f"{kind}.manifest")


def output_path(bucket: str, run_id: str) -> str:
    """``S3OutputPath`` of every job: ``s3://<bucket>/jobs`` (the bucket's lifecycle tiers ``jobs/``)."""
    return f"s3://{bucket}/jobs"


def part(bucket: str, run_id: str, outcome: str, job: str) -> S3Uri:
    """One step's part file of an outcome manifest."""
    return run_root(bucket, run_id).join("results", outcome, f"{job}.manifest")


def cumulative(bucket: str, run_id: str, outcome: str) -> S3Uri:
    """The cumulative manifest of an outcome."""
    return run_root(bucket, run_id).join(f"{outcome}.manifest")


def summary(bucket: str, run_id: str) -> S3Uri:
    """The final summary."""
    return run_root(bucket, run_id).join("summary.json")


class ManifestWriter:
    """Write JSON Lines to S3 in constant memory: a spooled temporary file, uploaded on ``close``.

    ``upload_fileobj`` switches to a multipart upload for large files, so 100,000 lines never sit
    in a Python list. Nothing is uploaded if the block raises, so a crashed step leaves no half file.
    """

    def __init__(self, s3: Any, uri: S3Uri, *, write_empty: bool = True) -> None:
        self.s3, self.uri, self.write_empty = s3, uri, write_empty
        self.count = 0
        self._fp: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 (closed in close())

    def write(self, line: dict[str, Any]) -> None:
        """Append one line."""
        self._fp.write(dumps_line(line).encode("utf-8"))
        self.count += 1

    def close(self, *, upload: bool = True) -> None:
        """Upload (unless empty and ``write_empty`` is false) and release the temporary file."""
        try:
            if upload and (self.count or self.write_empty):
                self._fp.seek(0)
                self.s3.upload_fileobj(
                    self._fp, self.uri.bucket, self.uri.key, ExtraArgs={"ContentType": "application/x-ndjson"}
                )
        finally:
            self._fp.close()

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(upload=exc_type is None)


def concatenate(s3: Any, parts: list[S3Uri], target: S3Uri) -> int:
    """Stream ``parts`` one after the other into ``target``; return the number of lines."""
    with ManifestWriter(s3, target) as out:
        for uri in parts:
            body = s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"]
            try:
                for raw in body.iter_lines():
                    if raw.strip():
                        out._fp.write(raw + b"\n")
                        out.count += 1
            finally:
                body.close()
        return out.count


def list_parts(s3: Any, bucket: str, run_id: str, outcome: str) -> Iterator[S3Uri]:
    """The part files of an outcome, in key order."""
    prefix = part(bucket, run_id, outcome, "x").key[: -len("x.manifest")]
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            yield S3Uri(bucket, obj["Key"])


# ---------------------------------------------------------------- line shapes
def audit_line(
    *,
    object_id: str,
    round_no: int,
    original: str,
    mask: str,
    overlay: str,
    color_map: dict[str, Any],
    labelers: list[str],
    agreement: float | None,
    labeling_job: str,
    seeded: str | None = None,
) -> dict[str, Any]:
    """An audit manifest line (the brief's shape); ``source-ref`` is the overlay the auditors see.

    ``seeded``: a gold object's defect (``gtaudit.gold.SEEDED_KEY``), for the trace; audit_pre
    never passes it on to the task.
    """
    info: dict[str, Any] = {
        "stage": "audit",
        "round": round_no,
        "original": original,
        "mask": mask,
        "overlay": overlay,
        "color-map": color_map,
        "labelers": labelers,
        "agreement": agreement,
        "labeling-job": labeling_job,
    }
    if seeded is not None:
        info[SEEDED_KEY] = seeded
    return {"source-ref": overlay, OBJECT_ID_KEY: object_id, GTAUDIT_KEY: info}


def rework_line(
    *, object_id: str, round_no: int, original: str, mask: str, color_map: dict[str, Any], feedback: dict[str, Any]
) -> dict[str, Any]:
    """A rework manifest line: the previous mask (for ``initial-value``) and the auditors' feedback."""
    return {
        "source-ref": original,
        OBJECT_ID_KEY: object_id,
        GTAUDIT_KEY: {"round": round_no, "previous-mask": mask, "color-map": color_map, "feedback": feedback},
    }


def builtin_label(
    attribute: str, mask: str, color_map: dict[str, Any], labeling_job: str | None, created: str | None
) -> dict[str, Any]:
    """The label of an outcome line in Ground Truth's built-in semantic-segmentation form.

    ``<attribute>-ref`` is the mask and ``<attribute>-ref-metadata`` carries its ``internal-color-map``,
    ``type: groundtruth/semantic-segmentation``, ``human-annotated``, ``creation-date`` and ``job-name``
    (reference section 5; Ground Truth's output-data documentation), so SageMaker's built-in
    semantic-segmentation algorithm (``AttributeNames ["source-ref", "<attribute>-ref"]``) and the
    usual Ground Truth converters read the accepted manifest as it is.
    """
    meta: dict[str, Any] = {"internal-color-map": color_map, "type": SEGMENTATION_TYPE, "human-annotated": "yes"}
    if created:
        meta["creation-date"] = created
    if labeling_job:
        meta["job-name"] = f"labeling-job/{labeling_job}"
    return {f"{attribute}-ref": mask, f"{attribute}-ref-metadata": meta}


def outcome_line(
    *,
    object_id: str,
    original: str | None,
    outcome: str,
    round_no: int,
    job: str,
    reason: str | None = None,
    label: dict[str, Any] | None = None,
    **details: Any,
) -> dict[str, Any]:
    """A line of an outcome manifest (accepted, needs-attention or failed); ``label``: ``builtin_label``."""
    info: dict[str, Any] = {"outcome": outcome, "round": round_no, "job": job}
    if reason is not None:
        info["reason"] = reason
    info.update({k.replace("_", "-"): v for k, v in details.items() if v is not None})
    line: dict[str, Any] = {**(label or {}), OBJECT_ID_KEY: object_id, GTAUDIT_KEY: info}
    if original:
        line = {"source-ref": original, **line}
    return line
