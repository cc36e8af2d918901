"""Quality scores: the confusion matrix against a plain count, and the IoUs read from it."""

from __future__ import annotations

import numpy as np
import pytest
from gtaudit.labeling.masks import vote
from gtaudit.quality import class_counts, confusion_matrix, score, score_masks, score_workers
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

NAMES = ("BACKGROUND", "cat", "dog", "sky")


def _plain_confusion(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((k, k), dtype=np.int64)
    np.add.at(out, (a.ravel(), b.ravel()), 1)
    return out


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.tuples(st.integers(1, 12), st.integers(1, 12)).flatmap(
                lambda shape: st.tuples(
                    arrays(np.uint8, shape, elements=st.integers(0, k - 1)),
                    arrays(np.uint8, shape, elements=st.integers(0, k - 1)),
                )
            ),
        )
    )
)
def test_the_matrix_counts_every_pixel_once_in_its_cell(case: tuple[int, tuple[np.ndarray, np.ndarray]]) -> None:
    k, (a, b) = case
    got = confusion_matrix(a, b, k)
    assert got.shape == (k, k)
    assert (got == _plain_confusion(a, b, k)).all()
    assert (confusion_matrix(a, b, k, reference_counts=class_counts(a)) == got).all()


def test_class_ious_and_confusion_cells_read_from_the_matrix() -> None:
    ref = np.zeros((10, 10), np.uint8)
    ref[0:4, 0:5] = 1  # 20 cat pixels
    ref[6:10, 6:10] = 2  # 16 dog pixels
    painted = ref.copy()
    painted[0:4, 5:7] = 1  # 8 extra cat pixels on background
    painted[6:8, 6:10] = 3  # 8 dog pixels painted as sky
    s = score_masks(ref, painted, NAMES)
    assert s.classes["cat"].inter == 20 and s.classes["cat"].union == 28
    assert s.classes["cat"].iou == pytest.approx(20 / 28, abs=1e-4)
    assert s.classes["dog"].inter == 8 and s.classes["dog"].union == 16
    assert s.classes["sky"].inter == 0 and s.classes["sky"].iou == 0.0
    # labeled pixels: 20 + 16 in the reference, 8 more cat painted: 44; matched 20 + 8 = 28
    assert s.iou == pytest.approx(28 / 44, abs=1e-4)
    cells = [(c.reference, c.painted, c.pixels) for c in s.confusion]
    assert sorted(cells) == [("BACKGROUND", "cat", 8), ("dog", "sky", 8)]


def test_a_perfect_mask_scores_one_and_two_empty_masks_score_one() -> None:
    ref = np.zeros((5, 5), np.uint8)
    assert score_masks(ref, ref, NAMES).iou == 1.0
    ref[1:3, 1:3] = 2
    perfect = score_masks(ref, ref.copy(), NAMES)
    assert perfect.iou == 1.0 and perfect.confusion == [] and list(perfect.classes) == ["dog"]


def test_the_overall_iou_is_the_agreement_rule_of_the_vote() -> None:
    rng = np.random.default_rng(7)
    a = rng.integers(0, 3, (40, 40)).astype(np.uint8)
    b = rng.integers(0, 3, (40, 40)).astype(np.uint8)
    assert score_masks(a, b, NAMES[:3]).iou == pytest.approx(vote([a, b]).agreement, abs=1e-4)


def test_only_the_largest_cells_are_kept() -> None:
    ref = np.repeat(np.arange(4, dtype=np.uint8), 4).reshape(4, 4)
    painted = np.roll(ref, 1, axis=0)
    s = score(confusion_matrix(ref, painted, 4), NAMES, cells=2)
    assert len(s.confusion) == 2
    assert s.confusion[0].pixels >= s.confusion[1].pixels


@pytest.mark.parametrize(
    ("reference", "painted", "k", "needle"),
    [
        (np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8), 2, "shape"),
        (np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.int32), 2, "uint8"),
        (np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8), 0, "n_classes"),
    ],
)
def test_bad_inputs_name_the_parameter(reference: np.ndarray, painted: np.ndarray, k: int, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        confusion_matrix(reference, painted, k)


def test_score_workers_scores_each_worker_as_score_masks_does() -> None:
    rng = np.random.default_rng(7)
    ref = rng.integers(0, 4, size=(30, 40), dtype=np.uint8)
    masks = [(f"w{i}", np.where(rng.random((30, 40)) < 0.2, rng.integers(0, 4, (30, 40)), ref).astype(np.uint8))
             for i in (2, 1)]  # fmt: skip
    got = score_workers(ref, masks, NAMES)
    assert list(got) == ["w2", "w1"]
    assert all(got[w] == score_masks(ref, m, NAMES) for w, m in masks)


def test_scores_against_the_vote_need_only_its_disputed_pixels() -> None:
    rng = np.random.default_rng(3)
    scene = rng.integers(0, 4, size=(30, 40), dtype=np.uint8)
    masks = [(f"w{i}", np.where(rng.random((30, 40)) < 0.1, rng.integers(0, 4, (30, 40)), scene).astype(np.uint8))
             for i in range(3)]  # fmt: skip
    voted = vote([m for _, m in masks])
    assert 0 < voted.disputed.size < scene.size
    got = score_workers(voted.mask, masks, NAMES, candidates=voted.disputed)
    assert got == score_workers(voted.mask, masks, NAMES)
    assert all(got[w] == score_masks(voted.mask, m, NAMES) for w, m in masks)
    some = confusion_matrix(voted.mask, masks[0][1], 4, candidates=voted.disputed)
    assert (some == _plain_confusion(voted.mask, masks[0][1], 4)).all()


def test_score_workers_refuses_a_mask_of_another_shape() -> None:
    ref = np.zeros((3, 4), np.uint8)
    with pytest.raises(ValueError, match="shape"):
        score_workers(ref, [("w1", ref), ("w2", np.zeros((4, 3), np.uint8))], NAMES, candidates=np.arange(3))
