"""The pipeline-state table: one item per run and one per job, changed only by conditional writes.

Keys (``pk``, ``sk``), both strings:

* ``RUN#<run>`` / ``RUN``: the run (objects in, labels, status, when it finished);
* ``RUN#<run>`` / ``JOB#<job name>``: one job (kind, round, input manifest, status, counts,
  per-labeler audit counts, per-labeler IoU sums and the labelers it flagged, the processing lease);
* ``RUN#<run>`` / ``FLAG#<worker>``: a labeler flagged for gold accuracy below the threshold,
  written once (``attribute_not_exists``) so the run sends one notice per labeler.

A job goes ``creating`` -> ``created`` -> ``processed`` (or ``failed`` when Ground Truth reports
Failed/Stopped). ``creating`` is written with ``attribute_not_exists`` *before* CreateLabelingJob,
so two deliveries of one event race on the item, not on Ground Truth; the deterministic job name
makes the create itself idempotent too (``ResourceInUse`` means it already exists). A job's
completion is processed under a lease (a conditional update with an expiry), so a duplicate
event that arrives while the first is still working backs off, and a crashed invocation's
retry takes over once the lease expires.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from gtaudit.models.jobs import JobKind
from gtaudit.s3io import is_conditional_check_failed

LEASE_SECONDS = 960  # longer than the orchestrator's 900 s timeout
DONE = ("processed", "failed")


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals back to int/float, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _written(write: Callable[..., Any], **request: Any) -> bool:
    """Run a conditional write; False, not an error, when its condition does not hold."""
    try:
        write(**request)
    except ClientError as exc:
        if is_conditional_check_failed(exc):
            return False
        raise
    return True


@dataclass(frozen=True)
class Job:
    """A job item."""

    run_id: str
    name: str
    kind: JobKind
    round: int
    manifest: str
    attribute: str
    status: str
    objects: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    labeler_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    next_job: str | None = None
    failure: str | None = None
    # {worker: {"consensus"|"gold": {"inter", "union", "objects"}}}: sampling.LabelerAccuracy.dump()
    labeler_scores: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    flagged: list[str] = field(default_factory=list)  # labelers this job's step flagged (gold IoU < threshold)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Job:
        """From a table item."""
        i = _plain(item)
        return cls(
            i["run_id"],
            i["name"],
            JobKind(i["kind"]),
            int(i["round"]),
            i["manifest"],
            i["attribute"],
            i["status"],
            int(i.get("objects", 0)),
            i.get("counts", {}),
            i.get("labeler_counts", {}),
            i.get("next_job"),
            i.get("failure"),
            i.get("labeler_scores", {}),
            i.get("flagged", []),
        )


class PipelineState:
    """The table, through a boto3 ``Table`` resource passed in by the caller."""

    def __init__(self, table: Any, *, clock: Any = time.time) -> None:
        self.table, self.clock = table, clock

    # ------------------------------------------------------------ runs
    def create_run(self, run_id: str, **attrs: Any) -> bool:
        """Write the run item once; return False if it already exists."""
        item = {
            "pk": f"RUN#{run_id}",
            "sk": "RUN",
            "run_id": run_id,
            "status": "running",
            "created_at": int(self.clock()),
            **attrs,
        }
        return _written(self.table.put_item, Item=item, ConditionExpression="attribute_not_exists(pk)")

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The run item, or None."""
        item = self.table.get_item(Key={"pk": f"RUN#{run_id}", "sk": "RUN"}, ConsistentRead=True).get("Item")
        return _plain(item) if item else None

    def finish_run(self, run_id: str, status: str, summary_uri: str) -> bool:
        """Mark the run finished once; return False if it already was (the summary was sent)."""
        return _written(
            self.table.update_item,
            Key={"pk": f"RUN#{run_id}", "sk": "RUN"},
            UpdateExpression="SET #s = :s, summary = :u, finished_at = :t",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(finished_at)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": status, ":u": summary_uri, ":t": int(self.clock())},
        )

    # ------------------------------------------------------------ jobs
    def _job_key(self, run_id: str, name: str) -> dict[str, str]:
        return {"pk": f"RUN#{run_id}", "sk": f"JOB#{name}"}

    def get_job(self, run_id: str, name: str) -> Job | None:
        """A job item, or None."""
        item = self.table.get_item(Key=self._job_key(run_id, name), ConsistentRead=True).get("Item")
        return Job.from_item(item) if item else None

    def jobs(self, run_id: str) -> Iterator[Job]:
        """Every job of a run."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :job)",
            "ExpressionAttributeValues": {":pk": f"RUN#{run_id}", ":job": "JOB#"},
            "ConsistentRead": True,
        }
        while True:
            page = self.table.query(**kwargs)
            for item in page.get("Items", []):
                yield Job.from_item(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def register_job(self, job: Job) -> bool:
        """Write a job as ``creating`` unless it exists; return whether this call wrote it."""
        item = {
            **self._job_key(job.run_id, job.name),
            "run_id": job.run_id,
            "name": job.name,
            "kind": job.kind,
            "round": job.round,
            "manifest": job.manifest,
            "attribute": job.attribute,
            "status": "creating",
            "objects": job.objects,
        }
        return _written(self.table.put_item, Item=item, ConditionExpression="attribute_not_exists(pk)")

    def mark_created(self, run_id: str, name: str) -> None:
        """``creating`` -> ``created`` (no-op if the job already moved on)."""
        _written(
            self.table.update_item,
            Key=self._job_key(run_id, name),
            UpdateExpression="SET #s = :created",
            ConditionExpression="#s = :creating",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":created": "created", ":creating": "creating"},
        )

    def acquire(self, run_id: str, name: str, owner: str) -> bool:
        """Take the job's processing lease unless it is done or another live invocation holds it."""
        now = int(self.clock())
        return _written(
            self.table.update_item,
            Key=self._job_key(run_id, name),
            UpdateExpression="SET lease_owner = :o, lease_until = :until",
            ConditionExpression=(
                "attribute_exists(pk) AND NOT #s IN (:p, :f) "
                "AND (attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :o)"
            ),
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":o": owner,
                ":until": now + LEASE_SECONDS,
                ":now": now,
                ":p": "processed",
                ":f": "failed",
            },
        )

    def record_counts(
        self,
        run_id: str,
        name: str,
        counts: dict[str, int],
        labeler_counts: dict[str, dict[str, int]] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """Store a step's counts and other ``attributes`` of the job (an overwrite: a retried step
        records the same values). Numbers must be integers (DynamoDB takes no float)."""
        sets = {"counts": counts, **({"labeler_counts": labeler_counts} if labeler_counts is not None else {})}
        sets.update(attributes or {})
        self.table.update_item(
            Key=self._job_key(run_id, name),
            UpdateExpression="SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(sets))),
            ExpressionAttributeNames={f"#a{i}": k for i, k in enumerate(sets)},
            ExpressionAttributeValues={f":a{i}": v for i, v in enumerate(sets.values())},
        )

    # ------------------------------------------------------------ flags
    def flag_labeler(self, run_id: str, worker: str, iou: float, job: str) -> bool:
        """Record a labeler flagged for gold accuracy once; return False if the run already had."""
        item = {
            "pk": f"RUN#{run_id}",
            "sk": f"FLAG#{worker}",
            "run_id": run_id,
            "worker": worker,
            "gold_iou": Decimal(str(round(iou, 4))),
            "job": job,
            "flagged_at": int(self.clock()),
        }
        return _written(self.table.put_item, Item=item, ConditionExpression="attribute_not_exists(pk)")

    def finish_job(
        self, run_id: str, name: str, status: str, *, next_job: str | None = None, failure: str | None = None
    ) -> bool:
        """Mark a job ``processed`` or ``failed`` and drop its lease; False if it already was."""
        expr = "SET #s = :s REMOVE lease_owner, lease_until"
        values: dict[str, Any] = {":s": status, ":p": "processed", ":f": "failed"}
        if next_job:
            expr = "SET #s = :s, next_job = :n REMOVE lease_owner, lease_until"
            values[":n"] = next_job
        if failure:
            expr = expr.replace("SET #s = :s", "SET #s = :s, failure = :r")
            values[":r"] = failure
        return _written(
            self.table.update_item,
            Key=self._job_key(run_id, name),
            UpdateExpression=expr,
            ConditionExpression="attribute_exists(pk) AND NOT #s IN (:p, :f)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=values,
        )
