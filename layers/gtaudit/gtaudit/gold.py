"""Gold objects: images whose correct mask is known, mixed into a run's labeling job to score labelers.

The run's start (``gtaudit.pipeline.start``) writes everything gold under ``runs/<run>/gold/``,
a place no worker's page, task input or answer ever names:

* ``index.json`` (``GoldIndex``): one ``GoldEntry`` per gold object, keyed by the image URI the
  labeling manifest line gives (``source-ref``), which is all a consolidation request tells
  labeling_post about an object;
* ``truth/<object id>.png``: the known-correct mask, an 8-bit indexed PNG whose index ``i`` is
  the run's label ``i`` (``GoldIndex.labels``, index 0 BACKGROUND);
* ``shown/<object id>.png``: for a gold object chosen to test the auditors, the mask the audit
  shows in place of the workers' vote: the truth with one defect made in it, or the truth itself
  (``defect == "none"``), in the same form.

A gold object's manifest line, task and answers look like any other's; its image sits beside the
run's other images. labeling_post scores each worker against the truth (``ConsolidatedLabel.gold``)
and, for a seeded object, writes the shown mask as the object's consolidated mask; the orchestrator
sends seeded objects to the audit, their audit line marked ``gtaudit.seeded: <defect>``
(``SEEDED_KEY``, read by the trace, never by audit_pre), and drops every gold object from the run's
outcomes and counts (``gold_object_ids``).

A reader of gold sources (``gtaudit_local.gold.read_gold``) hands each object over as a
:class:`GoldObject`; ``gtaudit.pipeline.gold_start`` checks it against the run and writes it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from botocore.exceptions import ClientError
from pydantic import Field

from gtaudit.models.stages import Contract
from gtaudit.s3io import get_json, is_not_found, put_json
from gtaudit.s3uri import S3Uri

# A seeded object's defect: the audit reason that names it, or "none" for the unaltered truth.
Defect = Literal["missing-object", "wrong-class", "loose-boundary", "extra-region", "none"]
DEFECTS: tuple[Defect, ...] = ("missing-object", "wrong-class", "loose-boundary", "extra-region")
# The order the seeded objects of a run take their defects in: about one in five is the clean truth,
# so that a false reject can be measured beside a catch.
DEFECT_CYCLE: tuple[Defect, ...] = (*DEFECTS, "none")
GoldRole = Literal["label-only", "seeded"]
SEEDED_KEY = "seeded"  # gtaudit.seeded of a seeded object's audit manifest line: its defect


@dataclass(frozen=True, slots=True, eq=False)
class GoldObject:
    """One gold object as a lead supplies it, before the run checks it.

    ``name`` is the image's file name (its extension says its type), ``image`` its bytes, and
    ``truth`` the known-correct mask: a 2-D ``uint8`` array, ``0`` background and ``i`` the run's
    label ``i`` (``labels[i - 1]``), at the size the image is displayed at.
    """

    name: str
    image: bytes
    truth: np.ndarray


class GoldEntry(Contract):
    """One gold object: its image, its ID in the run, where its truth is and what the audit sees."""

    source_ref: str = Field(alias="source-ref")
    object_id: str = Field(alias="object-id")
    truth_ref: str = Field(alias="truth-ref")
    role: GoldRole = "label-only"
    defect: Defect | None = None  # seeded only
    shown_ref: str | None = Field(default=None, alias="shown-ref")  # seeded only


class GoldIndex(Contract):
    """``runs/<run>/gold/index.json``."""

    version: int = 1
    labels: list[str]  # class i of a truth or shown PNG is labels[i - 1]; 0 is BACKGROUND
    entries: list[GoldEntry] = Field(default_factory=list)

    def by_source(self) -> dict[str, GoldEntry]:
        """The entries by image URI."""
        return {e.source_ref: e for e in self.entries}

    def by_object(self) -> dict[str, GoldEntry]:
        """The entries by object ID."""
        return {e.object_id: e for e in self.entries}


def gold_root(bucket: str, run_id: str) -> S3Uri:
    """``s3://<bucket>/runs/<run>/gold``."""
    return S3Uri(bucket, f"runs/{run_id}/gold")


def index_uri(bucket: str, run_id: str) -> S3Uri:
    """``runs/<run>/gold/index.json``."""
    return gold_root(bucket, run_id).join("index.json")


def truth_uri(bucket: str, run_id: str, object_id: str) -> S3Uri:
    """``runs/<run>/gold/truth/<object id>.png``."""
    return gold_root(bucket, run_id).join("truth", f"{object_id}.png")


def shown_uri(bucket: str, run_id: str, object_id: str) -> S3Uri:
    """``runs/<run>/gold/shown/<object id>.png``."""
    return gold_root(bucket, run_id).join("shown", f"{object_id}.png")


def load_index(s3: Any, bucket: str, run_id: str) -> GoldIndex | None:
    """The run's gold index, or ``None`` when the run has no gold objects.

    Raises
    ------
    botocore.exceptions.ClientError
        The index exists but cannot be read now (throttling, 5xx): the caller's retry reads it again.
    """
    try:
        raw = get_json(s3, index_uri(bucket, run_id))
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise
    return GoldIndex.model_validate(raw)


def write_index(s3: Any, bucket: str, run_id: str, index: GoldIndex) -> S3Uri:
    """Write ``index.json`` (after every file it names: labeling_post reads it as the sign they exist)."""
    uri = index_uri(bucket, run_id)
    put_json(s3, uri, index.model_dump(mode="json", by_alias=True))
    return uri


def gold_object_ids(s3: Any, bucket: str, run_id: str) -> frozenset[str]:
    """The object IDs of the run's gold objects (none when it has no index), which never count as the run's."""
    index = load_index(s3, bucket, run_id)
    return frozenset(index.by_object()) if index else frozenset()
