"""Binary image tools for the scripted workers, on ``scipy.ndimage``.

All of them use 4-connectivity (:data:`CROSS`): a pixel's neighbours are the pixels above, below,
left and right of it, as a person's brush or a flood fill sees a region. Outside the frame counts
as background for growing and as foreground for shrinking, so the frame edge neither grows a
region nor eats into one: a region that touches the edge erodes only from inside.

These replaced a home-made run-length union-find and shift-and-or loops; the scripted workers are
seeded and the demo's outputs depend on every pixel and on the order of the components, so the
SciPy calls were checked pixel for pixel against the old functions (labels included: both number
components in raster order of their first pixel), and ``tests/unit/local/workers/test_morphology.py``
keeps checking them against brute-force definitions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage

CROSS = ndimage.generate_binary_structure(2, 1)  # the 4-neighbourhood: a 3x3 plus sign


def _check_2d(name: str, array: np.ndarray) -> None:
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {array.shape}")


def _steps(operation: Callable[..., np.ndarray], mask: np.ndarray, r: int, **options: Any) -> np.ndarray:
    """``operation`` repeated ``r`` times with :data:`CROSS`: a new boolean array (a copy when ``r <= 0``)."""
    _check_2d("mask", mask)
    if r <= 0:  # ndimage reads iterations < 1 as "until nothing changes"
        return mask.astype(bool, copy=True)
    return operation(mask, CROSS, iterations=r, **options)


def dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Grow a 2-D boolean mask by ``r`` 4-neighbour steps: the pixels within Manhattan distance ``r`` of it.

    The frame edge does not grow it (outside the frame is background).
    """
    return _steps(ndimage.binary_dilation, mask, r)


def erode(mask: np.ndarray, r: int) -> np.ndarray:
    """Shrink a 2-D boolean mask by ``r`` 4-neighbour steps.

    A pixel stays when every in-frame pixel within Manhattan distance ``r`` is in the mask: pixels
    on the frame edge erode only from inside (outside the frame counts as foreground).
    """
    return _steps(ndimage.binary_erosion, mask, r, border_value=1)


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label the 4-connected components of a boolean mask.

    Parameters
    ----------
    mask
        2-D boolean array.

    Returns
    -------
    tuple
        ``(labels, count)``: ``int32`` labels (0 outside the mask, 1..count inside, numbered in
        raster order of each component's first pixel) and the count.
    """
    _check_2d("mask", mask)
    labels, count = ndimage.label(mask, CROSS)
    return labels.astype(np.int32, copy=False), int(count)


def components(mask: np.ndarray) -> list[np.ndarray]:
    """The pixel index arrays (flat) of each component of ``mask``, largest first (ties in label order)."""
    labels, count = label_components(mask)
    if count == 0:
        return []
    flat = labels.reshape(-1)
    inside = np.flatnonzero(flat)
    order = inside[np.argsort(flat[inside], kind="stable")]
    bounds = np.concatenate(([0], np.cumsum(np.bincount(flat[inside], minlength=count + 1)[1:])))
    parts = [order[bounds[k] : bounds[k + 1]] for k in range(count)]
    parts.sort(key=len, reverse=True)
    return parts


def class_edge(classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels with a 4-neighbour of another class, and that neighbour's class.

    The neighbour is the first found in the order right, below, left, above, so that soft edges
    painted from it are the same on every run.
    """
    neighbour = classes.copy()
    edge = np.zeros(classes.shape, dtype=bool)
    for src, dst in (
        ((slice(None), slice(1, None)), (slice(None), slice(None, -1))),
        ((slice(1, None), slice(None)), (slice(None, -1), slice(None))),
        ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),
        ((slice(None, -1), slice(None)), (slice(1, None), slice(None))),
    ):
        other = classes[src]
        differs = (other != classes[dst]) & ~edge[dst]
        neighbour[dst][differs] = other[differs]
        edge[dst] |= differs
    return edge, neighbour
