"""What the two Completed steps share: reading a job's output manifest, listing failures, moving on.

A Completed step streams the job's output manifest line by line. Each line's label is parsed into the
stage's contract (``ConsolidatedLabel`` after labeling, ``AuditVerdict`` after audit); an object whose
label is missing or failed is listed as failed with the reason, and an object of the job's input that
the output lacks is listed too, so every object of a run ends in exactly one outcome manifest.

A gold object (``gtaudit.gold``) is no object of the run: where it fails, it is dropped and counted
as ``gold-failed``, never listed, so the run's balance (objects in = approved + needing attention
+ failed) counts the run's own objects only.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from gtaudit import layout
from gtaudit.manifest import GTAUDIT_KEY, BadLine, object_id_of
from gtaudit.models.jobs import JobKind
from gtaudit.models.stages import AuditVerdict, ConsolidatedLabel
from gtaudit.pipeline import manifests as mf
from gtaudit.pipeline.context import Context
from gtaudit.pipeline.finish import finalize, rebuild
from gtaudit.pipeline.launch import start_next
from gtaudit.pipeline.state import Job
from gtaudit.s3uri import S3Uri, parse_s3_uri


def output_manifest(ctx: Context, job: Job, desc: dict[str, Any]) -> S3Uri:
    """The job's output manifest: as DescribeLabelingJob names it, else where Ground Truth writes it."""
    uri = (desc.get("LabelingJobOutput") or {}).get("OutputDatasetS3Uri")
    if uri:
        return parse_s3_uri(uri)
    return layout.output_manifest(job_root(ctx, job, desc))


def job_root(ctx: Context, job: Job, desc: dict[str, Any]) -> S3Uri:
    """``<S3OutputPath>/<job-name>/``."""
    out = desc.get("OutputConfig", {}).get("S3OutputPath") or mf.output_path(ctx.config.bucket, job.run_id)
    return layout.job_root(out, job.name)


def read_label[L: (ConsolidatedLabel, AuditVerdict)](
    line: dict[str, Any], attr: str, contract: type[L], absent: str
) -> L | str:
    """The line's label as the stage's contract, or why the object failed.

    Parameters
    ----------
    line
        An output manifest line.
    attr
        The job's label attribute name.
    contract
        ``ConsolidatedLabel`` or ``AuditVerdict``.
    absent
        The reason to give when there is no usable label (skipped by the pre-annotation Lambda, or
        never worked).
    """
    meta = line.get(f"{attr}-metadata")
    if isinstance(meta, dict) and meta.get("failure-reason"):
        return str(meta["failure-reason"])
    raw = line.get(attr)
    try:
        label = contract.model_validate(raw)
    except ValidationError:
        return absent
    if label.status == "failed":
        return label.failure_reason or "consolidation failed"
    return label


class HeldLines:
    """Lines a step holds back until it knows every object's fate (an overlay may still fail).

    Spooled to a temporary file beyond 8 MB, so a 100,000-object job holds no more in memory than a
    small one.
    """

    def __init__(self) -> None:
        # Closed by close() (or the with block the step holds it in), after the lines are replayed.
        self._file = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024, mode="w+", encoding="utf-8")  # noqa: SIM115

    def hold(self, object_id: str, target: str, line: dict[str, Any]) -> None:
        """Keep ``line`` for ``target`` (the manifest it is meant for)."""
        self._file.write(json.dumps([object_id, target, line], ensure_ascii=False) + "\n")

    def __iter__(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        self._file.seek(0)
        for row in self._file:
            object_id, target, line = json.loads(row)
            yield object_id, target, line

    def close(self) -> None:
        """Drop the held lines."""
        self._file.close()

    def __enter__(self) -> HeldLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OutputStep:
    """One Completed step over a job's output: its counts and its failed manifest; ``gold`` are the
    IDs of the run's gold objects, which a failure drops instead of listing."""

    def __init__(
        self, job: Job, counts: dict[str, int], failed: mf.ManifestWriter, gold: frozenset[str] = frozenset()
    ) -> None:
        self.job, self.counts, self.failed, self.gold = job, counts, failed, gold

    def fail(self, object_id: str, original: str | None, reason: str, **details: Any) -> None:
        """List one object as failed and count it (a gold object: only count it, as ``gold-failed``)."""
        if object_id in self.gold:
            self.counts["gold-failed"] = self.counts.get("gold-failed", 0) + 1
            return
        self.counts["failed"] += 1
        self.failed.write(
            mf.outcome_line(
                object_id=object_id,
                original=original,
                outcome="failed",
                round_no=self.job.round,
                job=self.job.name,
                reason=reason,
                **details,
            )
        )

    def lines(self, s3: Any, output: S3Uri) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(object id, line)`` of each good output line; a bad line is counted and listed as failed."""
        for line in mf.read_lines(s3, output):
            self.counts["lines"] += 1
            if isinstance(line, BadLine):  # its object cannot be named; listed by line number, counted once
                self.fail(f"line-{line.number}", None, line.reason)
                continue
            yield object_id_of(line) or f"line-{self.counts['lines']}", line

    def fail_missing(self, ctx: Context, output: S3Uri) -> None:
        """Objects of the job's input that its output manifest lacks: listed as failed, never lost."""
        if self.counts["lines"] >= self.job.objects:
            return
        seen = {
            oid
            for line in mf.read_lines(ctx.clients.s3, output)
            if isinstance(line, dict) and (oid := object_id_of(line))
        }
        for line in mf.read_lines(ctx.clients.s3, parse_s3_uri(self.job.manifest)):
            if isinstance(line, BadLine):
                continue
            oid = object_id_of(line)
            if oid and oid not in seen:
                info = line.get(GTAUDIT_KEY) or {}
                original = info.get("original") or line.get("source-ref")
                self.fail(oid, original, "missing from the job's output manifest")


def advance(
    ctx: Context,
    job: Job,
    counts: dict[str, int],
    next_step: tuple[JobKind, int, S3Uri, int],
    labeler_counts: dict[str, dict[str, int]] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> tuple[str | None, bool]:
    """Record the step (counts, ``labeler_counts`` and other job ``attributes``), start the next job
    if it has objects (``next_step`` = kind, round, manifest, objects), rebuild the cumulative
    manifests, finish the run if nothing follows and mark the job.

    Returns ``(next job, started)``: ``(None, False)`` when the run finished, ``(name, False)`` when
    Ground Truth refused the next job (and the run ended as failed).
    """
    ctx.state.record_counts(job.run_id, job.name, counts, labeler_counts, attributes)
    kind, round_no, manifest, objects = next_step
    next_job, started = None, False
    if objects:
        next_job, started = start_next(ctx, job, kind, round_no, manifest, objects)
    rebuild(ctx, job.run_id)
    if next_job is None:
        finalize(ctx, job, "completed")
    ctx.state.finish_job(job.run_id, job.name, "processed", next_job=next_job)
    return next_job, started
