"""The start's choices about gold, without S3: how many, which, seeded with what, named how, where."""

from __future__ import annotations

import io

import numpy as np
import pytest
from gtaudit.gold import DEFECT_CYCLE, GoldObject
from gtaudit.pipeline.config import PipelineConfig
from gtaudit.pipeline.gold_start import (
    check_gold,
    choose,
    expected_audited,
    file_names,
    gold_count,
    positions,
    seeded_count,
)
from PIL import Image

RUN = "20261124t100000-ab12"


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height)).save(buf, format="PNG")
    return buf.getvalue()


def scene(height: int = 30, width: int = 40) -> np.ndarray:
    t = np.zeros((height, width), dtype=np.uint8)
    t[5:15, 5:20] = 1
    t[18:26, 25:35] = 2
    return t


@pytest.mark.parametrize(
    ("objects", "available", "share", "expected"),
    [(10, 5, 0.1, 1), (90, 50, 0.1, 10), (90, 4, 0.1, 4), (3, 5, 0.01, 1), (10, 5, 0.0, 0), (10, 0, 0.5, 0)],
)
def test_gold_count_makes_the_share_of_the_job_gold(objects: int, available: int, share: float, expected: int) -> None:
    assert gold_count(objects, available, share) == expected


def test_seeded_count_follows_the_expected_audit() -> None:
    assert expected_audited(PipelineConfig(bucket="b", table="t"), 40) == 40.0
    sample = PipelineConfig(bucket="b", table="t", audit_policy="sample", sample_rate=0.25)
    assert expected_audited(sample, 40) == 10.0
    assert seeded_count(90, 20, 0.1) == 10
    assert seeded_count(90, 4, 0.1) == 4  # never more than the gold the job has
    assert seeded_count(2, 4, 0.1) == 1  # at least one where there is a share
    assert seeded_count(90, 4, 0.0) == seeded_count(0, 4, 0.1) == 0


def test_check_gold_accepts_a_fitting_object_and_names_each_fault() -> None:
    assert check_gold(GoldObject("a.png", png(40, 30), scene()), 2) is None
    assert check_gold(GoldObject("a.PNG", png(40, 30), scene()), 2) is None
    assert check_gold(GoldObject("a.webp", png(40, 30), scene()), 2) == (
        "image type '.webp': Ground Truth's segmentation tool takes .jpg, .jpeg, .png"
    )
    assert check_gold(GoldObject("a.png", png(40, 30), scene()), 1) == "mask: class index 2, but the run has 1 label"
    assert check_gold(GoldObject("a.png", png(40, 30), scene().astype(np.int32)), 2) == (
        "mask: need a 2-D uint8 class array, got 2-D int32"
    )
    assert check_gold(GoldObject("a.png", png(30, 40), scene()), 2) == (
        "size: the mask is 40x30, the image is displayed as 30x40"
    )
    assert (check_gold(GoldObject("a.jpg", b"\xff\xd8 truncated", scene()), 2) or "").startswith("image cannot be read")


def test_file_names_keep_a_gold_name_unless_the_run_has_it() -> None:
    names = file_names(["cat.jpg", "Dog.png", "dog.jpg", "bird.jpg"], {"dog.png", "cat.jpeg"})
    assert names[0] == "cat.jpg"  # another extension is another file
    assert names[1].startswith("Dog-") and names[1].endswith(".png")  # the run's dog.png, ignoring case
    assert names[2] == "dog.jpg"
    assert names[3] == "bird.jpg"
    assert file_names(["x.png", "x.png"], set())[1] != "x.png"  # two gold objects of one name


def test_positions_spread_gold_through_the_job_deterministically() -> None:
    ids = [f"g{i}" for i in range(200)]
    at = positions(RUN, ids, 50)
    assert at == positions(RUN, ids, 50)
    assert all(0 <= p <= 50 for p in at) and len(set(at)) > 30
    assert positions("20261124t100000-ffff", ids, 50) != at  # another run, other places


def test_choose_takes_a_run_dependent_subset_and_seeds_in_the_cycle_order() -> None:
    pool = [GoldObject(f"p{i}.png", png(40, 30), scene()) for i in range(12)]
    chosen = choose(RUN, pool, count=7, seeded=6, n_labels=2, taken=set())
    assert len(chosen) == 7 and len({c.file_name for c in chosen}) == 7
    assert [c.defect for c in chosen] == [*DEFECT_CYCLE, DEFECT_CYCLE[0], None]
    for c in chosen[:6]:
        assert c.shown is not None and ((c.shown != c.obj.truth).any() == (c.defect != "none"))
    again = choose(RUN, pool, count=7, seeded=6, n_labels=2, taken=set())
    assert [c.file_name for c in again] == [c.file_name for c in chosen]
    other = choose("20261124t100000-ffff", pool, count=7, seeded=0, n_labels=2, taken=set())
    assert [c.file_name for c in other] != [c.file_name for c in chosen]


def test_a_truth_that_cannot_show_a_defect_takes_the_next_one() -> None:
    empty = GoldObject("e.png", png(40, 30), np.zeros((30, 40), dtype=np.uint8))
    (chosen,) = choose(RUN, [empty], count=1, seeded=1, n_labels=2, taken=set())
    assert chosen.defect == "extra-region"  # nothing to remove, relabel or loosen
    one_label = GoldObject("o.png", png(40, 30), (scene() > 0).astype(np.uint8))
    turns = [c.defect for c in choose(RUN, [one_label] * 2, count=2, seeded=2, n_labels=1, taken=set())]
    assert turns == ["missing-object", "loose-boundary"]  # wrong-class needs a second label
