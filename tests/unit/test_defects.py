"""The seeded defects: each changes the truth as its name says, and only where a truth can show it.

The numpy-only morphology is held to scipy.ndimage's (a test-only dependency: the layer ships no
scipy) on random masks.
"""

from __future__ import annotations

import numpy as np
import pytest
from gtaudit.defects import band_width, components, dilate, make_defect, pick_object
from gtaudit.gold import DEFECT_CYCLE
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

EIGHT = np.ones((3, 3), dtype=bool)


def scene() -> np.ndarray:
    """Three objects of two classes on background: a large and a small class 1, a middle-sized class 2."""
    t = np.zeros((120, 160), dtype=np.uint8)
    t[10:70, 10:80] = 1  # 4200 px
    t[80:110, 100:150] = 2  # 1500 px
    t[20:40, 120:140] = 1  # 400 px
    return t


masks = arrays(bool, st.tuples(st.integers(1, 24), st.integers(1, 24)))


@settings(max_examples=60, deadline=None)
@given(masks, st.integers(0, 6))
def test_dilate_is_a_square_dilation(mask: np.ndarray, radius: int) -> None:
    square = np.ones((2 * radius + 1, 2 * radius + 1), dtype=bool)
    np.testing.assert_array_equal(dilate(mask, radius), ndimage.binary_dilation(mask, structure=square))


@settings(max_examples=60, deadline=None)
@given(masks)
def test_components_are_the_8_connected_regions_largest_first(mask: np.ndarray) -> None:
    labeled, n = ndimage.label(mask, structure=EIGHT)
    found = components(mask)
    assert len(found) == n
    assert [c.area for c in found] == sorted(np.bincount(labeled.ravel())[1:].tolist(), reverse=True)
    for c in found:
        region = c.mask(mask.shape)
        assert region.sum() == c.area
        assert len(np.unique(labeled[region])) == 1  # one scipy component each


def test_the_object_taken_is_the_median_of_the_visible_ones() -> None:
    obj = pick_object(scene())
    assert obj is not None and (obj.label, obj.area) == (2, 1500)
    assert pick_object(np.zeros((5, 5), dtype=np.uint8)) is None


def test_missing_object_removes_one_object() -> None:
    t = scene()
    out = make_defect(t, "missing-object", 2)
    assert out is not None
    changed = out != t
    assert changed.sum() == 1500 and (t[changed] == 2).all() and (out[changed] == 0).all()


def test_wrong_class_paints_one_object_as_the_next_class() -> None:
    t = scene()
    out = make_defect(t, "wrong-class", 3)
    assert out is not None
    changed = out != t
    assert changed.sum() == 1500 and (out[changed] == 3).all()
    wrapped = make_defect(t, "wrong-class", 2)  # the last label's next is the first
    assert wrapped is not None and (wrapped[changed] == 1).all()
    assert make_defect(t, "wrong-class", 1) is None  # one label: no other class to paint


def test_loose_boundary_grows_an_object_into_the_background_by_a_band() -> None:
    t = scene()
    out = make_defect(t, "loose-boundary", 2)
    assert out is not None
    changed = out != t
    r = band_width(t.shape)
    assert r == 2
    assert (t[changed] == 0).all() and (out[changed] == 2).all()
    np.testing.assert_array_equal(changed, dilate(t == 2, r) & (t == 0))


def test_loose_boundary_shrinks_an_object_that_has_no_background_around_it() -> None:
    t = np.ones((40, 40), dtype=np.uint8)
    t[10:30, 10:30] = 2  # the median object, inside class 1: no background around it
    t[0:5, 0:5] = 3
    out = make_defect(t, "loose-boundary", 3)
    assert out is not None
    changed = out != t
    ring = np.zeros_like(changed)
    ring[10:30, 10:30] = True
    ring[12:28, 12:28] = False  # band_width of a 40 x 40 image: 2
    np.testing.assert_array_equal(changed, ring)
    assert (out[changed] == 0).all()


def test_extra_region_paints_the_main_class_on_background_only() -> None:
    t = scene()
    out = make_defect(t, "extra-region", 2)
    assert out is not None
    changed = out != t
    assert changed.sum() > 100 and (t[changed] == 0).all() and (out[changed] == 1).all()
    assert make_defect(np.ones((30, 30), dtype=np.uint8), "extra-region", 1) is None  # no background at all
    empty = make_defect(np.zeros((30, 30), dtype=np.uint8), "extra-region", 2)
    assert empty is not None and set(np.unique(empty).tolist()) == {0, 1}


@pytest.mark.parametrize("defect", DEFECT_CYCLE)
def test_every_defect_is_a_pure_function_of_the_truth(defect: str) -> None:
    t = scene()
    first, second = make_defect(t, defect, 3), make_defect(t.copy(), defect, 3)  # type: ignore[arg-type]
    assert first is not None and second is not None
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(t, scene())  # the truth itself is not touched
    assert (first != t).any() == (defect != "none")


def test_an_empty_truth_can_show_only_an_extra_region_or_nothing() -> None:
    empty = np.zeros((20, 20), dtype=np.uint8)
    shown = {d: make_defect(empty, d, 2) is not None for d in DEFECT_CYCLE}  # type: ignore[arg-type]
    assert shown == {
        "missing-object": False,
        "wrong-class": False,
        "loose-boundary": False,
        "extra-region": True,
        "none": True,
    }


def test_bad_input_is_refused_with_the_parameter_named() -> None:
    with pytest.raises(ValueError, match="truth: need a 2-D uint8 array"):
        make_defect(np.zeros((4, 4), dtype=np.int32), "none", 1)
    with pytest.raises(ValueError, match="defect: unknown 'smudge'"):
        make_defect(scene(), "smudge", 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="radius"):
        dilate(np.zeros((2, 2), dtype=bool), -1)
