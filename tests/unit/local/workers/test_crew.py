"""The demo crew: who is in it, stable identities for a seed, and the gold samples among its references."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gtaudit.labels import DEFAULT_LABELS
from gtaudit.pipeline.gold_start import check_gold
from gtaudit_local.demo import default_gold, make_workers, reference_folders
from gtaudit_local.gold import read_gold
from gtaudit_local.workers.base import Worker
from gtaudit_local.workers.crew import default_crew
from gtaudit_local.workers.references import References, without_reference
from support import ROOT
from worker_scenes import reference_scene, save_reference

WORKER_ID = re.compile(r"^private\.us-east-1\.[0-9a-f]{16}$")


def test_default_crew_has_three_labelers_and_two_auditors_each_best_first() -> None:
    labelers, auditors = default_crew(42)
    assert [lab.profile.name for lab in labelers] == ["careful", "average", "sloppy"]
    assert [a.skill.name for a in auditors] == ["keen", "lax"]
    crew: list[Worker] = [*labelers, *auditors]
    ids = [w.worker_id for w in crew]
    assert len(set(ids)) == 5 and all(WORKER_ID.match(i) for i in ids)
    assert all(uuid.UUID(w.sub).version == 4 for w in crew)
    assert [w.worker_id for w in (*default_crew(42)[0], *default_crew(42)[1])] == ids  # stable for a seed
    assert default_crew(43)[0][0].worker_id != ids[0]


def test_the_auditors_differ_in_what_they_see_and_both_sometimes_reject_a_good_mask() -> None:
    keen, lax = (a.skill for a in default_crew(0)[1])
    assert keen.notice >= lax.notice + 0.5  # far apart, so the report's catch rates rank them
    assert keen.band > 0 and lax.band == 0 and keen.threshold > lax.threshold
    assert 0 < keen.false_reject <= 0.1 and 0 < lax.false_reject <= 0.1


def test_the_scripted_demo_crew_labels_every_object_three_times_and_audits_it_once() -> None:
    labelers, auditors, per_object = make_workers("scripted", ROOT, seed=0)
    assert per_object == len(labelers) == 3  # a majority vote; a labeler never audits (separate teams)
    assert {w.worker_id for w in labelers}.isdisjoint(w.worker_id for w in auditors)
    assert all(isinstance(a.references, References) for a in auditors)
    assert [str(p) for p in auditors[0].references.locations] == [str(p) for p in reference_folders(ROOT)]


@pytest.fixture(scope="module")
def gold() -> Any:
    return read_gold(default_gold(ROOT), DEFAULT_LABELS)


def test_the_sample_gold_is_read_whole_and_every_object_can_serve_a_run(gold: Any) -> None:
    assert gold.refused == []
    names = sorted(obj.name for obj in gold.objects)
    assert len(names) == 8 and {n.rsplit(".", 1)[0] for n in names}.isdisjoint(
        p.stem for p in (ROOT / "samples" / "images").iterdir()
    )  # new names: nothing in a gold task's name says which sample it comes from
    assert [check_gold(obj, len(DEFAULT_LABELS)) for obj in gold.objects] == [None] * 8


def test_every_gold_image_has_its_truth_as_the_crews_reference(gold: Any, s3: Any) -> None:
    """The crew judges a gold image as any other: by its reference, which is the gold truth."""
    pictures = sorted((default_gold(ROOT) / "images").iterdir())
    assert without_reference(reference_folders(ROOT), pictures) == []
    references = References(reference_folders(ROOT), DEFAULT_LABELS)
    for obj in gold.objects:
        reference = references.get(obj.name.rsplit(".", 1)[0], s3)
        assert reference is not None and np.array_equal(reference, obj.truth), obj.name


def test_references_are_looked_up_in_their_folders_in_order(tmp_path: Path, s3: Any) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    save_reference(first, "scene", reference_scene())
    save_reference(second, "scene", np.zeros((120, 160), dtype=np.uint8))
    save_reference(second, "other", reference_scene())
    both = References([first, second])
    assert np.array_equal(both.get("scene", s3), reference_scene())  # the first folder that has it
    assert np.array_equal(both.get("other", s3), reference_scene())
    assert both.get("missing", s3) is None and References(None).get("scene", s3) is None
