"""What the emulator keeps of a labeling job while it runs: :class:`LabelingJobRun` and :class:`ObjectRun`.

These are the emulator's own records, named apart from the domain's ``gtaudit.pipeline.state.Job``
(the pipeline's view of a job it started) and from the domain's per-object results: a
:class:`LabelingJobRun` is what ``DescribeLabelingJob`` reports and what the demo reads back, an
:class:`ObjectRun` is one data object on its way through the job (its task input, the workers'
answers, the consolidated label or why it failed).

What of them outlives the process is kept by :mod:`~gtaudit_local.groundtruth.store` (the job, and
each finished object's outcome) and in the bucket (each object's answers, in its worker-response
file), so that a job can run again from there after a restart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gtaudit.names import parse_job_name

FINAL_STATUSES = frozenset({"Completed", "Stopped", "Failed"})


@dataclass
class ObjectRun:
    """What became of one data object in one job."""

    index: int
    line: dict[str, Any]
    task_input: dict[str, Any] | None = None
    answers: list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None
    retries: int = 0
    label: dict[str, Any] | None = None  # the consolidated content (``{attr: ...}``)
    done: bool = False
    # The stamp of the object's one worker-response file, taken at its first answer: the file is
    # rewritten under the same key after each answer, and found again after a restart.
    response_stamp: str | None = None


@dataclass
class LabelingJobRun:
    """One labeling job: its request, status and progress."""

    request: dict[str, Any]
    arn: str
    created: float
    status: str = "InProgress"
    modified: float = 0.0
    failure_reason: str | None = None
    total: int = 0
    finished: int = 0
    labeled: int = 0
    failed: int = 0
    phase: str = "queued"
    stop_requested: bool = False
    output_manifest: str | None = None
    kind: str = "labeling"
    round: int = 1
    # The consolidation request's stamp, recorded before the request is written, so that a job run
    # again after a restart sends the consolidation Lambda the same request key.
    consolidation_stamp: str | None = None

    @property
    def ended(self) -> bool:
        """Whether the job has its final status (``Completed``, ``Stopped`` or ``Failed``)."""
        return self.status in FINAL_STATUSES

    @property
    def name(self) -> str:
        return str(self.request["LabelingJobName"])

    def counters(self) -> dict[str, int]:
        """``LabelCounters`` as Describe and List report them (every label is a human's)."""
        return {
            "TotalLabeled": self.labeled,
            "HumanLabeled": self.labeled,
            "MachineLabeled": 0,
            "FailedNonRetryableError": self.failed,
            "Unlabeled": max(0, self.total - self.labeled - self.failed),
        }


def kind_and_round(req: Mapping[str, Any]) -> tuple[str, int]:
    """The job's stage (labeling, audit or rework) and round: from tags, else the job name, else the attribute."""
    tags = {str(t.get("Key")): str(t.get("Value")) for t in req.get("Tags") or [] if isinstance(t, dict)}
    kind = tags.get("gtaudit:kind")
    rnd = tags.get("gtaudit:round")
    parts = parse_job_name(str(req.get("LabelingJobName", "")))
    if kind is None and parts is not None:
        kind = parts.kind
    if rnd is None and parts is not None:
        rnd = str(parts.round)
    attr = str(req.get("LabelAttributeName", ""))
    m = re.search(r"-r(\d+)$", attr)
    if rnd is None and m:
        rnd = m.group(1)
    if kind is None:
        kind = "audit" if attr.startswith("audit") else ("rework" if rnd and int(rnd) > 1 else "labeling")
    return kind, int(rnd) if rnd and rnd.isdigit() else 1
