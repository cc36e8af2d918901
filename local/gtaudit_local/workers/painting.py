"""How a scripted labeler paints: its mistakes on a class-index mask, and the answer PNG.

Mistakes are drawn from the task's generator, so the same seed, worker and task paint the same
pixels. Each function returns a new ``uint8`` class-index mask (0 background, *i* = the task's
label *i*) and leaves its input as it was:

* :func:`jitter` pushes and pulls stretches of every outline by up to ``px`` pixels: dilate or
  erode the region, but only where a smooth random field picks the zone, so a person's sloppiness
  shows along parts of the outline, not all round it.
* :func:`miss_region`, :func:`wrong_class` and :func:`extra_blob` make whole-region mistakes;
  :func:`fix` undoes wrong regions in a rework.
* :func:`render_answer_png` paints the result as GT's browser canvas does: label colours on a
  transparent background, with a share of the edge pixels anti-aliased.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from gtaudit.labels import hex_to_rgb
from PIL import Image, ImageDraw

from gtaudit_local.workers.morphology import class_edge, components, dilate, erode

WORK_SIDE = 640  # random fields and effort estimates are computed at most this size


def smooth_field(rng: np.random.Generator, size: tuple[int, int], cells: int = 6) -> np.ndarray:
    """Smooth random values in 0..1 over the frame: bilinear-upsampled coarse noise."""
    w, h = size
    coarse = rng.random((cells, cells)).astype(np.float32)
    # Above WORK_SIDE, interpolate at that size and repeat pixels: the field only picks zones.
    step = -(-max(w, h) // WORK_SIDE)
    img = Image.fromarray(coarse).resize((-(-w // step), -(-h // step)), Image.Resampling.BILINEAR)
    field_ = np.asarray(img, dtype=np.float32)
    lo, hi = float(field_.min()), float(field_.max())
    field_ = (field_ - lo) / (hi - lo) if hi > lo else np.full(field_.shape, 0.5, np.float32)
    return field_.repeat(step, axis=0).repeat(step, axis=1)[:h, :w] if step > 1 else field_


def jitter(classes: np.ndarray, rng: np.random.Generator, px: int, share: float) -> np.ndarray:
    """Push and pull stretches of every outline by up to ``px`` pixels."""
    out = classes.copy()
    if px <= 0 or share <= 0:
        return out
    h, w = classes.shape
    present = [int(c) for c in np.unique(classes) if c]
    for c in rng.permutation(present):
        region = classes == c
        r = int(rng.integers(1, px + 1))
        field_ = smooth_field(rng, (w, h))
        grow_zone, shrink_zone = field_ > 1 - share / 2, field_ < share / 2
        out[dilate(region, r) & ~region & grow_zone] = c
        out[region & ~erode(region, r) & shrink_zone & (out == c)] = 0
    return out


def miss_region(classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Leave one small region (or, lacking one, a patch inside a large one) unpainted."""
    out = classes.copy()
    h, w = classes.shape
    total = h * w
    small: list[np.ndarray] = []
    for c in (int(v) for v in np.unique(classes) if v):
        small += [p for p in components(classes == c) if 0.0005 * total <= len(p) <= 0.08 * total]
    if small:
        out.reshape(-1)[small[int(rng.integers(len(small)))]] = 0
        return out
    labeled = np.flatnonzero(classes)
    if labeled.size:
        cy, cx = divmod(int(labeled[int(rng.integers(labeled.size))]), w)
        r = max(6, int(min(h, w) * rng.uniform(0.05, 0.1)))
        patch = Image.new("1", (w, h), 0)
        ImageDraw.Draw(patch).ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
        out[np.asarray(patch, dtype=bool)] = 0
    return out


def wrong_class(classes: np.ndarray, rng: np.random.Generator, n_labels: int) -> np.ndarray:
    """Give one sizeable region another of the task's classes."""
    out = classes.copy()
    if n_labels < 2:
        return out
    total = classes.size
    regions: list[tuple[int, np.ndarray]] = []
    for c in (int(v) for v in np.unique(classes) if v):
        regions += [(c, p) for p in components(classes == c) if len(p) >= 0.002 * total]
    if regions:
        c, pixels = regions[int(rng.integers(len(regions)))]
        other = int(rng.integers(1, n_labels))  # 1..n-1, shifted past c below
        out.reshape(-1)[pixels] = other + (other >= c)
    return out


def extra_blob(classes: np.ndarray, rng: np.random.Generator, n_labels: int) -> np.ndarray:
    """Paint a stray blob of some class over the background."""
    out = classes.copy()
    h, w = classes.shape
    free = np.flatnonzero(classes == 0)
    if free.size < 0.05 * classes.size:
        return out
    cy, cx = divmod(int(free[int(rng.integers(free.size))]), w)
    rx, ry = (max(5, int(min(h, w) * rng.uniform(0.04, 0.09))) for _ in range(2))
    blob = Image.new("1", (w, h), 0)
    ImageDraw.Draw(blob).ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=1)
    out[np.asarray(blob, dtype=bool) & (classes == 0)] = int(rng.integers(1, n_labels + 1))
    return out


def fix(
    previous: np.ndarray, reference: np.ndarray, rng: np.random.Generator, p_fix: float, pins: np.ndarray
) -> np.ndarray:
    """A rework: each wrong region is fixed with ``p_fix`` (more surely when a pin points at it)."""
    out = previous.copy()
    # One lookup table of pinned pixels, read per region: np.isin sorted every region against the
    # pins (21% of a 12 MP run's time went there, over the many small regions a jitter leaves).
    pinned_at = np.zeros(previous.size, dtype=bool)
    pinned_at[pins] = True
    for pixels in components(previous != reference):
        pinned = bool(pins.size) and bool(pinned_at[pixels].any())
        if rng.random() < (min(1.0, p_fix + 0.25) if pinned else p_fix):
            out.reshape(-1)[pixels] = reference.reshape(-1)[pixels]
    return out


def central_blob(size: tuple[int, int]) -> np.ndarray:
    """Without a reference: an ellipse over the middle of the frame, class 1."""
    w, h = size
    im = Image.new("L", (w, h), 0)
    ImageDraw.Draw(im).ellipse([w // 4, h // 4, w - w // 4, h - h // 4], fill=1)
    return np.asarray(im, dtype=np.uint8).copy()


def render_answer_png(classes: np.ndarray, colors: Sequence[str], rng: np.random.Generator, antialias: float) -> bytes:
    """Paint classes as GT's canvas does: label colours, transparent background, soft edges.

    A share ``antialias`` of the edge pixels is mixed with the neighbouring class: between two
    labels the colour is blended; towards the background the alpha is partial.
    """
    lut = np.zeros((len(colors) + 1, 4), dtype=np.uint8)
    for i, c in enumerate(colors, start=1):
        lut[i] = (*hex_to_rgb(c), 255)
    rgba = lut[classes]
    if antialias > 0:
        # Only edge pixels change: work on their flat indices, not on whole-frame float arrays.
        edge, neighbour = class_edge(classes)
        idx = np.flatnonzero(edge)
        idx = idx[rng.random(idx.size) < antialias]
        t = rng.uniform(0.12, 0.42, size=idx.size).astype(np.float32)
        own_class, other_class = classes.reshape(-1)[idx], neighbour.reshape(-1)[idx]
        own, other = lut[own_class].astype(np.float32), lut[other_class].astype(np.float32)
        both, to_bg, from_bg = (own_class > 0) & (other_class > 0), other_class == 0, own_class == 0
        own[both] = own[both] * (1 - t[both, None]) + other[both] * t[both, None]
        own[to_bg, 3] = 255 * (1 - t[to_bg])
        own[from_bg, :3] = other[from_bg, :3]
        own[from_bg, 3] = 255 * t[from_bg]
        rgba.reshape(-1, 4)[idx] = np.clip(np.rint(own), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG", compress_level=1)  # 12 MP mask: 0.33 s instead of 1.0 s
    return buf.getvalue()
