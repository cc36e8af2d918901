"""Known defects made in a known-correct mask: what a seeded audit object shows its auditors.

A seeded object tests an auditor with a mask whose fault is known. Each defect is one of the audit's
own reason codes (``gtaudit.reasons``), made from the truth so that it looks like a labeler's slip:

================= =====================================================================================
defect            what :func:`make_defect` changes in the truth
================= =====================================================================================
missing-object    one object (a connected region of one class) becomes background
wrong-class       one object is painted as the next class of the label set
loose-boundary    one object's boundary moves out into the background by a band (or in, when it
                  has no background around it), ``band_width`` pixels wide
extra-region      an ellipse of the truth's main class is painted where the truth has only background
none              nothing: the clean truth, so that a reject of a correct mask can be counted
================= =====================================================================================

Objects are 8-connected regions (:func:`components`). The object a defect takes is the one of median
area among those large enough to see (at least ``MIN_OBJECT_SHARE`` of the image and 16 pixels; the
largest when none is), so the defect is neither a speck nor the whole picture. Everything is a pure
function of the truth: a retried start makes the same mask, byte for byte.

Only numpy: the Lambda layer ships no scipy. Connected components are found on the mask's row runs
(one union-find over runs, not pixels), and a band is a square dilation done as a running maximum
over shifts that double in length, on the object's bounding box only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gtaudit.gold import Defect

MIN_OBJECT_SHARE = 0.0005  # of the image's pixels: a smaller region is a speck, not an object to remove
BAND_SHARE = 0.015  # a loose boundary's band, as a share of the image's longer side
BLOB_SHARE = 0.08  # an extra region's radii, as a share of the image's height and width


@dataclass(frozen=True, slots=True)
class Component:
    """One connected region of one class: its class, its area and its row runs."""

    label: int
    area: int
    rows: np.ndarray
    starts: np.ndarray
    ends: np.ndarray  # exclusive

    def mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """The region as a boolean array of ``shape``."""
        edges = np.zeros((shape[0], shape[1] + 1), dtype=np.int32)
        np.add.at(edges, (self.rows, self.starts), 1)
        np.add.at(edges, (self.rows, self.ends), -1)
        return np.cumsum(edges, axis=1)[:, : shape[1]] > 0


def _runs(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rows, starts, ends)`` of the horizontal runs of True, in row-major order."""
    h, w = binary.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = binary
    step = np.diff(padded, axis=1)
    rows, starts = np.nonzero(step == 1)
    _, ends = np.nonzero(step == -1)  # row-major, so the n-th end closes the n-th start
    return rows, starts, ends


def components(binary: np.ndarray, label: int = 1) -> list[Component]:
    """The 8-connected regions of a boolean array, largest first (ties: the one met first)."""
    rows, starts, ends = _runs(binary)
    n = len(rows)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first = np.searchsorted(rows, np.arange(binary.shape[0] + 1)).tolist()
    s, e = starts.tolist(), ends.tolist()
    for y in range(binary.shape[0] - 1):
        i, i_end, j, j_end = first[y], first[y + 1], first[y + 1], first[y + 2]
        while i < i_end and j < j_end:
            if s[i] <= e[j] and s[j] <= e[i]:  # touching, diagonals included
                a, b = root(i), root(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            if e[i] < e[j]:
                i += 1
            else:
                j += 1
    roots = np.fromiter((root(i) for i in range(n)), dtype=np.int64, count=n)
    order = np.argsort(roots, kind="stable")  # a component's runs together, in row-major order
    cuts = np.flatnonzero(np.diff(roots[order])) + 1
    found = []
    for members in np.split(order, cuts) if n else []:
        area = int((ends[members] - starts[members]).sum())
        found.append(Component(label, area, rows[members], starts[members], ends[members]))
    return sorted(found, key=lambda c: -c.area)  # stable: equal areas keep their order


def pick_object(truth: np.ndarray) -> Component | None:
    """The object a defect takes (see the module docstring), or ``None`` when the truth has none."""
    found = [c for label in np.unique(truth).tolist() if label for c in components(truth == label, label)]
    if not found:
        return None
    found.sort(key=lambda c: -c.area)
    floor = max(16, MIN_OBJECT_SHARE * truth.size)
    visible = [c for c in found if c.area >= floor] or found[:1]
    return visible[len(visible) // 2]


def _shift(a: np.ndarray, k: int, axis: int) -> np.ndarray:
    """``out[i] = a[i + k]`` along ``axis``, False beyond the ends."""
    out = np.zeros_like(a)
    n = a.shape[axis]
    if abs(k) >= n:
        return out
    src = [slice(None)] * a.ndim
    dst = [slice(None)] * a.ndim
    src[axis], dst[axis] = (slice(k, None), slice(0, n - k)) if k >= 0 else (slice(0, n + k), slice(-k, None))
    out[tuple(dst)] = a[tuple(src)]
    return out


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """A boolean array grown by a ``(2 radius + 1)`` square: a running maximum in O(log radius) passes."""
    if radius < 0:
        raise ValueError(f"radius: need >= 0, got {radius}")
    out = mask.astype(bool)
    size = 2 * radius + 1
    for axis in (0, 1):
        n = out.shape[axis]
        acc = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in range(out.ndim)])
        width = 1
        while width * 2 <= size:  # acc[i] = any(padded[i : i + width])
            acc = acc | _shift(acc, width, axis)
            width *= 2
        if width < size:
            acc = acc | _shift(acc, size - width, axis)
        out = np.take(acc, np.arange(n), axis=axis)  # acc[i] = any(out[i - radius : i + radius + 1])
    return out


def band_width(shape: tuple[int, ...]) -> int:
    """How far a loose boundary strays, in pixels: a share of the image's longer side, at least 2."""
    return max(2, round(BAND_SHARE * max(shape)))


def _loose_boundary(truth: np.ndarray, obj: Component) -> np.ndarray | None:
    """The object grown into the background around it, else shrunk from its edge."""
    r = band_width(truth.shape)
    region = obj.mask(truth.shape)
    y0, y1 = max(0, int(obj.rows.min()) - r), min(truth.shape[0], int(obj.rows.max()) + r + 1)
    x0, x1 = max(0, int(obj.starts.min()) - r), min(truth.shape[1], int(obj.ends.max()) + r)
    box = (slice(y0, y1), slice(x0, x1))
    out = truth.copy()
    grown = dilate(region[box], r) & (truth[box] == 0)
    if grown.any():
        out[box][grown] = obj.label
        return out
    # Inward: the object's pixels within r of anything else. The box reaches r beyond the object
    # except where the image ends, and the image's edge is no boundary to move.
    edge = region[box] & dilate(~region[box], r)
    if not edge.any() or edge.sum() == obj.area:
        return None
    out[box][edge] = 0
    return out


def _extra_region(truth: np.ndarray) -> np.ndarray | None:
    """An ellipse of the main class where the truth has only background, at the point of a 7 x 7 grid
    nearest the middle where it fits (smaller if it fits nowhere)."""
    h, w = truth.shape
    labels, counts = np.unique(truth[truth > 0], return_counts=True)
    label = int(labels[np.argmax(counts)]) if len(labels) else 1
    for share in (BLOB_SHARE, BLOB_SHARE / 2, BLOB_SHARE / 4):
        ry, rx = max(2, round(share * h)), max(2, round(share * w))
        if 2 * ry + 1 > h or 2 * rx + 1 > w:
            continue
        yy, xx = np.ogrid[-ry : ry + 1, -rx : rx + 1]
        disk = (yy / ry) ** 2 + (xx / rx) ** 2 <= 1.0
        ys = np.linspace(ry, h - ry - 1, 7).round().astype(int).tolist()
        xs = np.linspace(rx, w - rx - 1, 7).round().astype(int).tolist()
        # Nearest the middle first: where an auditor looks, not tucked in a corner.
        for cy, cx in sorted(((y, x) for y in ys for x in xs), key=lambda c: (c[0] - h / 2) ** 2 + (c[1] - w / 2) ** 2):
            window = truth[cy - ry : cy + ry + 1, cx - rx : cx + rx + 1]
            if not window[disk].any():
                out = truth.copy()
                out[cy - ry : cy + ry + 1, cx - rx : cx + rx + 1][disk] = label
                return out
    return None


def make_defect(truth: np.ndarray, defect: Defect, n_labels: int) -> np.ndarray | None:
    """The truth with ``defect`` made in it (a new array), or ``None`` when this truth cannot show it.

    Parameters
    ----------
    truth
        A 2-D ``uint8`` class array: 0 background, ``i`` label ``i``.
    defect
        One of ``gtaudit.gold.DEFECT_CYCLE``.
    n_labels
        The run's number of labels (``wrong-class`` needs two).

    Returns
    -------
    numpy.ndarray or None
        ``None``: no object to remove, relabel or loosen, one label only for ``wrong-class``, or no
        room in the background for an extra region.

    Raises
    ------
    ValueError
        ``truth`` is not a 2-D ``uint8`` array, or ``defect`` is not a defect.
    """
    if truth.ndim != 2 or truth.dtype != np.uint8:
        raise ValueError(f"truth: need a 2-D uint8 array, got {truth.ndim}-D {truth.dtype}")
    if defect == "none":
        return truth.copy()
    if defect == "extra-region":
        return _extra_region(truth)
    if defect not in ("missing-object", "wrong-class", "loose-boundary"):
        raise ValueError(f"defect: unknown {defect!r}")
    obj = pick_object(truth)
    if obj is None or (defect == "wrong-class" and n_labels < 2):
        return None
    if defect == "loose-boundary":
        return _loose_boundary(truth, obj)
    out = truth.copy()
    out[obj.mask(truth.shape)] = 0 if defect == "missing-object" else obj.label % n_labels + 1
    return out
