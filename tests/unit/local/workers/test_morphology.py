"""Binary image tools of the scripted workers, against brute-force definitions on small masks."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from gtaudit_local.workers.morphology import class_edge, components, dilate, erode, label_components
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

small_masks = arrays(bool, st.tuples(st.integers(1, 9), st.integers(1, 9)))
steps = st.integers(0, 5)


def manhattan(shape: tuple[int, int]) -> np.ndarray:
    """``d[y, x, v, u]``: the number of 4-neighbour steps from ``(y, x)`` to ``(v, u)`` inside the frame."""
    ys, xs = np.indices(shape)
    return np.abs(ys[:, :, None, None] - ys[None, None]) + np.abs(xs[:, :, None, None] - xs[None, None])


def flood_fill_labels(mask: np.ndarray) -> np.ndarray:
    """4-connected components numbered by a raster scan that floods each new one from its first pixel."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    h, w = mask.shape
    count = 0
    for y in range(h):
        for x in range(w):
            if not mask[y, x] or labels[y, x]:
                continue
            count += 1
            labels[y, x] = count
            todo = deque([(y, x)])
            while todo:
                cy, cx = todo.popleft()
                for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                    if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = count
                        todo.append((ny, nx))
    return labels


@settings(max_examples=200, deadline=None)
@given(mask=small_masks, r=steps)
def test_dilate_reaches_every_pixel_within_r_steps_and_no_further(mask: np.ndarray, r: int) -> None:
    within = (manhattan(mask.shape) <= r) & mask[None, None]
    expected = within.any(axis=(2, 3))
    before = mask.copy()
    assert np.array_equal(dilate(mask, r), expected)
    assert np.array_equal(mask, before)  # a new image, the input untouched


@settings(max_examples=200, deadline=None)
@given(mask=small_masks, r=steps)
def test_erode_keeps_the_pixels_whose_in_frame_neighbourhood_is_all_mask(mask: np.ndarray, r: int) -> None:
    # Outside the frame counts as mask: a region on the frame edge erodes only from inside.
    near = manhattan(mask.shape) <= r
    expected = ~(near & ~mask[None, None]).any(axis=(2, 3))
    assert np.array_equal(erode(mask, r), expected)


@settings(max_examples=200, deadline=None)
@given(mask=small_masks)
def test_label_components_matches_a_raster_scan_flood_fill(mask: np.ndarray) -> None:
    labels, count = label_components(mask)
    expected = flood_fill_labels(mask)
    assert labels.dtype == np.int32
    assert np.array_equal(labels, expected)  # numbering too: the workers' choices depend on it
    assert count == int(expected.max())


@settings(max_examples=200, deadline=None)
@given(mask=small_masks)
def test_components_partition_the_mask_largest_first(mask: np.ndarray) -> None:
    parts = components(mask)
    assert [len(p) for p in parts] == sorted((len(p) for p in parts), reverse=True)
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    assert sorted(flat.tolist()) == np.flatnonzero(mask).tolist()
    labels = flood_fill_labels(mask).reshape(-1)
    assert all(len(set(labels[p].tolist())) == 1 for p in parts)


@settings(max_examples=200, deadline=None)
@given(classes=arrays(np.uint8, st.tuples(st.integers(1, 8), st.integers(1, 8)), elements=st.integers(0, 3)))
def test_class_edge_finds_a_differing_4_neighbour_right_below_left_above(classes: np.ndarray) -> None:
    edge, neighbour = class_edge(classes)
    h, w = classes.shape
    for y in range(h):
        for x in range(w):
            found = [
                int(classes[ny, nx])
                for ny, nx in ((y, x + 1), (y + 1, x), (y, x - 1), (y - 1, x))
                if 0 <= ny < h and 0 <= nx < w and classes[ny, nx] != classes[y, x]
            ]
            assert edge[y, x] == bool(found)
            assert neighbour[y, x] == (found[0] if found else classes[y, x])


def test_label_components_uses_four_connectivity() -> None:
    mask = np.array(
        [
            [1, 1, 0, 0],
            [0, 1, 0, 1],
            [0, 0, 1, 1],
            [1, 0, 0, 0],
        ],
        dtype=bool,
    )
    labels, count = label_components(mask)
    assert count == 3
    assert labels[0, 0] == labels[1, 1] != labels[2, 2] == labels[1, 3]
    assert labels[3, 0] not in {0, labels[0, 0], labels[2, 2]}
    assert (labels == 0).tolist() == (~mask).tolist()


@pytest.mark.parametrize("tool", [dilate, erode])
def test_zero_steps_is_a_copy_not_a_grow_until_stable(tool: object) -> None:
    mask = np.zeros((5, 5), dtype=bool)
    mask[2, 2] = True
    out = tool(mask, 0)  # type: ignore[operator]
    assert np.array_equal(out, mask) and out is not mask


@pytest.mark.parametrize("tool", [lambda m: dilate(m, 1), lambda m: erode(m, 1), label_components])
def test_tools_refuse_a_mask_that_is_not_2d(tool: object) -> None:
    with pytest.raises(ValueError, match="mask must be 2-D"):
        tool(np.zeros((2, 2, 2), dtype=bool))  # type: ignore[operator]
