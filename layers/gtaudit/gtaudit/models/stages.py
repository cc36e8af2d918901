"""The contracts between stages: what one stage writes and the next reads, as models both import.

::

    labeling_pre  --LabelingTaskInput-->  segmentation template  --answers-->  labeling_post
    labeling_post --ConsolidatedLabel (output manifest, <attr>)-->  orchestrator
    labeling_post --ScoresFile (consolidated-annotation/scores/)-->  worktime (trace table)
    orchestrator  --audit manifest line-->  audit_pre  --AuditTaskInput-->  audit template
    audit_post    --AuditVerdict (output manifest, <attr>)-->  orchestrator  --feedback-->  rework
    orchestrator  --StepResult-->  its Lambda's logs and metrics

A writer builds the model and dumps it with ``dump`` (aliases, and only the fields it set, so the
JSON is what Ground Truth and older readers expect); a reader parses it with ``model_validate``.
Unknown keys are kept: a newer writer's extra fields never break an older reader.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# Limits on what an auditor's feedback may carry, applied when audit_post reads the answer and
# again when labeling_pre hands the feedback to the rework task (a manifest can be edited by hand).
MAX_COMMENT = 2000  # characters of one comment
MAX_NOTES = 50  # region notes of one auditor
MAX_NOTE_TEXT = 500  # characters of one region note


class Contract(BaseModel):
    """Base of the stage contracts: aliases on the wire, unknown keys kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel)

    def dump(self) -> dict[str, Any]:
        """The JSON form: field aliases, and only the fields that were set (``None`` included when set)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class Exclusion(Contract):
    """A worker's answer left out of a consolidation, and why."""

    worker_id: str
    reason: str


class ColorMapEntry(Contract):
    """One class of Ground Truth's ``internal-color-map``."""

    class_name: str = Field(alias="class-name")
    hex_color: str = Field(alias="hex-color")
    confidence: float | None = None


class RegionNote(Contract):
    """An auditor's pin: its number, where it is (fractions 0..1 of the image) and what it says."""

    n: int
    x: float
    y: float
    text: str = ""


class Feedback(Contract):
    """What a rework task shows its labeler of the audit that sent the object back."""

    verdict: str = "reject"
    reasons: list[str] = Field(default_factory=list)
    comment: str = ""
    notes: list[RegionNote] = Field(default_factory=list)
    auditors: list[str] = Field(default_factory=list)


class LabelColor(Contract):
    label: str
    color: str


class InitialValue(Contract):
    """``initial-value`` of crowd-semantic-segmentation: the previous mask and its colours."""

    label_mappings: dict[str, dict[str, str]]
    src: str


class LabelingTaskInput(Contract):
    """``task.input`` of ``ui/segmentation.liquid.html``."""

    task_object: str
    object_id: str
    round: int
    labels: list[str]
    label_colors: list[LabelColor]
    language: str
    header: str
    short_instructions: str
    full_instructions: str
    initial_value: InitialValue | None = None
    feedback: Feedback | None = None


class LegendEntry(Contract):
    index: int
    label: str
    color: str


class ReasonChoice(Contract):
    code: str
    text: str


class AuditTaskInput(Contract):
    """``task.input`` of ``ui/audit.liquid.html``."""

    object_id: str
    round: int
    original: str
    overlay: str
    mask: str
    legend: list[LegendEntry]
    labelers: list[str]
    agreement: float | None
    reasons: list[ReasonChoice]
    language: str
    header: str
    instructions: str


class SkippedTask(Contract):
    """``task.input`` of an object no worker can work, with the reason the orchestrator lists later."""

    object_id: str
    skip_reason: str


class PreAnnotationResponse(Contract):
    """What a pre-annotation Lambda returns (reference section 1)."""

    task_input: LabelingTaskInput | AuditTaskInput | SkippedTask
    is_human_annotation_required: bool

    @classmethod
    def task(cls, task_input: LabelingTaskInput | AuditTaskInput) -> PreAnnotationResponse:
        """A task for the workers."""
        return cls(task_input=task_input, is_human_annotation_required=True)

    @classmethod
    def skip(cls, object_id: str, reason: str) -> PreAnnotationResponse:
        """No task: the object is listed as failed with ``reason``."""
        return cls(task_input=SkippedTask(object_id=object_id, skip_reason=reason), is_human_annotation_required=False)


class ImageSize(Contract):
    width: int
    height: int


class ClassScore(Contract):
    """One class of one worker's mask against the reference: pixels both gave it, pixels either did."""

    inter: int
    union: int
    iou: float | None = None


class ConfusionCell(Contract):
    """Pixels the reference gives class ``reference`` and the worker painted as ``painted``."""

    reference: str
    painted: str
    pixels: int


class WorkerScore(Contract):
    """One worker's mask against a reference: overall IoU, per class, and the largest confusions."""

    iou: float | None
    classes: dict[str, ClassScore] = Field(default_factory=dict)
    confusion: list[ConfusionCell] = Field(default_factory=list)


class GoldResult(Contract):
    """A gold object's label: each worker against the known-correct mask, and what the audit was shown.

    ``seeded`` names the defect of the mask sent to the audit in place of the vote (``none``: the
    known-correct mask itself), or is ``None`` when the gold object is not audited.
    """

    scores: dict[str, WorkerScore] = Field(default_factory=dict)
    seeded: str | None = None
    # Why the truth or the shown mask could not be used (the object's gold scoring or seeding only).
    failure_reason: str | None = Field(default=None, alias="failure-reason")


class ConsolidatedLabel(Contract):
    """The labeling job's label attribute: the voted mask, or why there is none.

    Field order is the JSON's key order (``status`` first, then ``failure-reason`` when failed).
    """

    status: Literal["consolidated", "failed"]
    failure_reason: str | None = Field(default=None, alias="failure-reason")
    mask_ref: str | None = Field(default=None, alias="mask-ref")
    color_map: dict[str, ColorMapEntry] = Field(default_factory=dict, alias="internal-color-map")
    image_size: ImageSize | None = Field(default=None, alias="image-size")
    workers: list[str] = Field(default_factory=list)
    agreement: float | None = None
    excluded: list[Exclusion] = Field(default_factory=list)
    scores: dict[str, WorkerScore] | None = None  # each worker against the vote (two workers or more)
    gold: GoldResult | None = None  # gold objects only


class ScoresFile(Contract):
    """``<annotations>/consolidated-annotation/scores/<name>.json``: one object's scores, for the trace.

    labeling_post writes it beside the consolidated mask for every object with scores against the
    vote or the truth; the worktime function records one trace item per worker from it. Every key
    is always written (``None`` as ``null``), in this order, so a retried batch writes the same bytes.
    """

    version: int = 1
    job: str
    dataset_object_id: str = Field(alias="dataset-object-id")
    source_ref: str | None = Field(default=None, alias="source-ref")
    gold: bool = False
    consensus: dict[str, WorkerScore] | None = None  # ConsolidatedLabel.scores
    truth: dict[str, WorkerScore] | None = None  # GoldResult.scores
    seeded: str | None = None  # GoldResult.seeded

    def dump(self) -> dict[str, Any]:
        """The JSON form, every field included."""
        return self.model_dump(mode="json", by_alias=True)


class Votes(Contract):
    approve: int
    reject: int


class AuditVerdict(Contract):
    """The audit job's label attribute: one verdict per object (any reject wins), or why there is none."""

    status: Literal["audited", "failed"]
    failure_reason: str | None = Field(default=None, alias="failure-reason")
    verdict: Literal["approve", "reject"] | None = None
    reasons: list[str] = Field(default_factory=list)
    comment: str = ""
    notes: list[RegionNote] = Field(default_factory=list)
    auditors: list[str] = Field(default_factory=list)
    votes: Votes | None = None
    excluded: list[Exclusion] = Field(default_factory=list)

    def feedback(self) -> Feedback:
        """What the rework task and the outcome manifests carry of this verdict."""
        return Feedback(
            verdict=self.verdict or "reject",
            reasons=self.reasons,
            comment=self.comment,
            notes=self.notes,
            auditors=self.auditors,
        )


StepAction = Literal["ignored", "duplicate", "busy", "audit-created", "rework-created", "finished", "failed"]


class StepResult(Contract):
    """What one job state event made the orchestrator do, for its logs, metrics and tests."""

    model_config = ConfigDict(alias_generator=None)

    job: str
    action: StepAction
    why: str | None = None  # why nothing was done
    status: str | None = None
    reason: str | None = None  # why a job failed, as Ground Truth says
    next: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The Lambda's return value: the fields that were set, with the counts flattened in."""
        data = self.model_dump(mode="json", exclude_unset=True, exclude={"counts"})
        return {**data, **self.counts}
