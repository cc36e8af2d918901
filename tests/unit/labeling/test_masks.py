"""Consolidation: colour mapping, snapping, the vote, agreement and the P-mode PNG (exact pixels)."""

from __future__ import annotations

import base64
import io
import itertools
import json
from collections import Counter

import numpy as np
import pytest
from gtaudit.exceptions import InvalidAnnotationError, InvalidMaskError, SizeMismatchError, UnknownColorsError
from gtaudit.labeling.masks import (
    ALPHA_OPAQUE,
    SNAP_TOLERANCE,
    build_class_table,
    decode_indexed,
    decode_mask,
    encode_mask,
    vote,
)
from gtaudit.labeling.post import read_segmentation
from gtaudit.labels import BACKGROUND_COLOR, LabelSet
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

PERSON, ANIMAL = "#2ca02c", "#1f77b4"
PALETTE = [(1, PERSON), (2, ANIMAL)]


def rgba_png(pixels: list[list[tuple[int, int, int, int]]], mode: str = "RGBA") -> bytes:
    img = Image.fromarray(np.array(pixels, dtype=np.uint8), "RGBA")
    if mode != "RGBA":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


T = (0, 0, 0, 0)
W = (255, 255, 255, 255)
P = (44, 160, 44, 255)
A = (31, 119, 180, 255)


def reference_vote(masks: list[np.ndarray]) -> np.ndarray:
    """The tie rule spelled out pixel by pixel: most votes, then the lowest class index."""
    out = np.zeros(masks[0].shape, dtype=np.uint8)
    for idx in np.ndindex(masks[0].shape):
        counts = Counter(int(m[idx]) for m in masks)
        out[idx] = min(counts, key=lambda c: (-counts[c], c))
    return out


# ---------------------------------------------------------------- decode_mask


def test_exact_colours_transparency_and_white() -> None:
    png = rgba_png([[T, W, P], [A, P, T]])
    assert decode_mask(png, PALETTE).tolist() == [[0, 0, 1], [2, 1, 0]]


def test_anti_aliased_and_near_colours_snap_to_the_nearest_label() -> None:
    edge = (44, 160, 44, 160)  # the label's colour, partly transparent: still painted
    faint = (31, 119, 180, 60)  # below alpha 128: not painted
    near = (40, 165, 50, 255)  # within the tolerance of person
    near_white = (250, 252, 251, 255)
    png = rgba_png([[edge, faint, near, near_white]])
    assert decode_mask(png, PALETTE).tolist() == [[1, 0, 1, 0]]


def test_a_few_unknown_colours_become_background_too_many_exclude_the_mask() -> None:
    far = (255, 0, 255, 255)
    few = [[P] * 10 + [far]]  # 1 of 11 painted pixels: under 10 %
    assert decode_mask(rgba_png(few), PALETTE).tolist() == [[1] * 10 + [0]]
    many = [[P] * 5 + [far] * 2]
    with pytest.raises(UnknownColorsError):
        decode_mask(rgba_png(many), PALETTE)


def test_colour_between_two_labels_snaps_to_the_nearer_one() -> None:
    palette = [(1, "#100000"), (2, "#200000")]
    png = rgba_png([[(0x14, 0, 0, 255), (0x1C, 0, 0, 255), (0x18, 0, 0, 255)]])
    # 0x18 is equidistant: the earlier candidate (lower class) wins.
    assert decode_mask(png, palette).tolist() == [[1, 2, 1]]


@pytest.mark.parametrize("mode", ["RGB", "P", "LA"])
def test_other_png_modes_are_converted(mode: str) -> None:
    pixels = [[W, P], [A, W]] if mode != "LA" else [[W, W], [W, W]]
    expected = [[0, 1], [2, 0]] if mode != "LA" else [[0, 0], [0, 0]]
    assert decode_mask(rgba_png(pixels, mode), PALETTE).tolist() == expected


def test_size_must_match_the_image() -> None:
    png = rgba_png([[P, P, P]])
    assert decode_mask(png, PALETTE, size=(3, 1)).shape == (1, 3)
    with pytest.raises(SizeMismatchError):
        decode_mask(png, PALETTE, size=(1, 3))


@pytest.mark.parametrize("data", [b"", b"not a png at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 20, b"GIF89a\x01\x00"])
def test_corrupt_or_non_png_data_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidMaskError):
        decode_mask(data, PALETTE)


def test_truncated_png_is_refused() -> None:
    png = rgba_png([[P] * 40] * 40)
    with pytest.raises(InvalidMaskError):
        decode_mask(png[: len(png) // 2], PALETTE)


def test_huge_masks_are_refused_before_decoding() -> None:
    png = rgba_png([[P] * 10] * 10)
    with pytest.raises(InvalidMaskError, match="more than"):
        decode_mask(png, PALETTE, max_pixels=99)


# ---------------------------------------------------------------- answers and classes


def answer(**seg: object) -> dict[str, object]:
    return {"crowd-semantic-segmentation": seg}


def test_class_table_categories_first_then_first_seen() -> None:
    t = build_class_table(["b", "a"], [{"c": "#000001", "a": "#000002"}, {"d": "#000003"}])
    assert t.names == ("BACKGROUND", "b", "a", "c", "d")
    assert t.colors[0] == "#ffffff"
    assert t.colors[2:] == ("#000002", "#000001", "#000003")
    assert t.colors[1] not in t.colors[2:]  # an unused category gets a free palette colour
    t2 = build_class_table(None, [{"y": "#000001"}, {"x": "#000002", "y": "#000009"}])
    assert t2.names == ("BACKGROUND", "y", "x")
    assert t2.colors == ("#ffffff", "#000001", "#000002")


# ---------------------------------------------------------------- vote


def test_vote_majority_and_tie_rule() -> None:
    a = np.array([[1, 2, 3, 0, 2]], dtype=np.uint8)
    b = np.array([[1, 3, 2, 1, 2]], dtype=np.uint8)
    c = np.array([[2, 1, 1, 2, 0]], dtype=np.uint8)
    r = vote([a, b, c])
    # col0: 1 twice; col1/col2: 3-way tie -> lowest; col3: tie with background -> 0; col4: 2 twice.
    assert r.mask.tolist() == [[1, 1, 1, 0, 2]]
    two = vote([np.array([[0, 1, 2]], np.uint8), np.array([[1, 2, 2]], np.uint8)])
    assert two.mask.tolist() == [[0, 1, 2]]


def test_agreement_is_mean_pairwise_iou_of_labeled_pixels() -> None:
    a = np.array([[1, 1, 0, 0]], dtype=np.uint8)
    b = np.array([[1, 2, 0, 0]], dtype=np.uint8)
    c = np.zeros((1, 4), dtype=np.uint8)
    # IoU(a,b) = 1/2, IoU(a,c) = 0/2, IoU(b,c) = 0/2
    assert vote([a, b, c]).agreement == pytest.approx(1 / 6)
    assert vote([c, c]).agreement == 1.0  # nobody labeled anything: full agreement
    assert vote([a]).agreement is None
    assert vote([a]).mask.tolist() == a.tolist()


def test_vote_refuses_empty_or_mixed_shapes() -> None:
    with pytest.raises(ValueError, match="masks"):
        vote([])
    with pytest.raises(ValueError, match="masks"):
        vote([np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.uint8)])


masks_strategy = st.integers(1, 6).flatmap(
    lambda n: st.tuples(st.integers(1, 5), st.integers(1, 5)).flatmap(
        lambda shape: st.lists(arrays(np.uint8, shape, elements=st.integers(0, 4)), min_size=n, max_size=n)
    )
)


@settings(max_examples=150, deadline=None)
@given(mask=arrays(np.uint8, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=st.integers(0, 9)),
       n=st.integers(1, 7))  # fmt: skip
def test_identical_masks_vote_to_that_mask(mask: np.ndarray, n: int) -> None:
    r = vote([mask.copy() for _ in range(n)])
    assert np.array_equal(r.mask, mask)
    assert r.agreement == (None if n == 1 else 1.0)


@settings(max_examples=150, deadline=None)
@given(masks=masks_strategy, data=st.data())
def test_vote_is_invariant_under_worker_permutation(masks: list[np.ndarray], data: st.DataObject) -> None:
    perm = data.draw(st.permutations(masks))
    r1, r2 = vote(masks), vote(list(perm))
    assert np.array_equal(r1.mask, r2.mask)
    assert r1.agreement == pytest.approx(r2.agreement) if r1.agreement is not None else r2.agreement is None


@settings(max_examples=150, deadline=None)
@given(masks=masks_strategy)
def test_vote_matches_the_reference_rule(masks: list[np.ndarray]) -> None:
    assert np.array_equal(vote(masks).mask, reference_vote(masks))


def reference_agreement(masks: list[np.ndarray]) -> float:
    """The mean over pairs of |same non-background class| / |labeled by either|, over every pixel."""
    ious = []
    for a, b in itertools.combinations(masks, 2):
        union = np.count_nonzero((a != 0) | (b != 0))
        ious.append(np.count_nonzero((a == b) & (a != 0)) / union if union else 1.0)
    return sum(ious) / len(ious)


@settings(max_examples=150, deadline=None)
@given(masks=masks_strategy.filter(lambda ms: len(ms) > 1), data=st.data())
def test_the_vote_finds_the_disputed_pixels_and_the_agreement_of_all_pixels(
    masks: list[np.ndarray], data: st.DataObject
) -> None:
    # Most pixels unanimous, as in real masks: the vote counts them without comparing them pair by pair.
    base = masks[0]
    keep = [data.draw(arrays(np.bool_, base.shape)) for _ in masks]
    masks = [np.where(k, base, m).astype(np.uint8) for k, m in zip(keep, masks, strict=True)]
    r = vote(masks)
    differ = np.zeros(base.shape, dtype=bool)
    for m in masks[1:]:
        differ |= m != masks[0]
    assert r.disputed.tolist() == np.flatnonzero(differ).tolist()
    assert r.agreement == pytest.approx(reference_agreement(masks))


def test_every_permutation_of_a_three_way_tie_gives_background_or_lowest() -> None:
    ms = [np.array([[k, k + 1]], np.uint8) for k in (1, 2, 3)]
    for perm in itertools.permutations(ms):
        assert vote(list(perm)).mask.tolist() == [[1, 2]]


# ---------------------------------------------------------------- encode_mask


def test_encode_mask_is_p_mode_with_gt_palette_and_deterministic() -> None:
    classes = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    png = encode_mask(classes, ["#ffffff", PERSON, ANIMAL])
    img = Image.open(io.BytesIO(png))
    assert img.mode == "P"
    assert np.asarray(img).tolist() == [[0, 1], [2, 1]]
    assert img.getpalette()[:9] == [255, 255, 255, 44, 160, 44, 31, 119, 180]
    assert encode_mask(classes, ["#ffffff", PERSON, ANIMAL]) == png
    with pytest.raises(ValueError, match="classes"):
        encode_mask(classes.astype(np.int32), ["#ffffff"])


def test_class_table_colours_stay_distinct_beyond_the_palette() -> None:
    # More unused categories than free palette colours used to all get "#000000": the colour map
    # then had duplicate colours, and the rework round refused it (LabelSet: two labels share a colour).
    categories = [f"c{i}" for i in range(40)]
    table = build_class_table(categories, [{"c0": "#2ca02c", "c1": "#123456"}])
    assert len(set(table.colors)) == len(table.colors) == 41
    assert table.colors[0] == BACKGROUND_COLOR and table.colors[1:3] == ("#2ca02c", "#123456")
    assert table == build_class_table(categories, [{"c0": "#2ca02c", "c1": "#123456"}])  # deterministic
    rebuilt = LabelSet.from_color_map(table.color_map(1.0))
    assert rebuilt.names == categories


def test_read_segmentation_takes_any_element_holding_labeled_image() -> None:
    png = rgba_png([[P]])
    content = {
        "other": {"x": 1},
        "my-seg": {
            "labeledImage": {"pngImageData": base64.b64encode(png).decode()},
            "labelMappings": {'say "hi" 猫': {"color": "#2CA02C"}},
            "inputImageProperties": {"width": 1, "height": 1},
        },
    }
    got = read_segmentation(json.loads(json.dumps(content)))
    assert got.png == png
    assert got.label_mappings == {'say "hi" 猫': PERSON}
    assert got.size == (1, 1)


@pytest.mark.parametrize(
    "content",
    [
        {},
        [],
        answer(),
        answer(labeledImage={}),
        answer(labeledImage={"pngImageData": ""}),
        answer(labeledImage={"pngImageData": "@@@"}),
        answer(labeledImage={"pngImageData": "AAAA"}, labelMappings={"x": {"color": "red"}}),
        answer(labeledImage={"pngImageData": "AAAA"}, labelMappings={"x": {"color": PERSON}, "y": {"color": PERSON}}),
        answer(labeledImage={"pngImageData": "AAAA"}, labelMappings={"x": {"color": "#FFFFFF"}}),
        answer(labeledImage={"pngImageData": "AAAA"}, inputImageProperties={"width": 0, "height": 3}),
        answer(labeledImage={"pngImageData": "AAAA"}, inputImageProperties={"width": "3", "height": 3}),
    ],
)
def test_read_segmentation_refuses_bad_answers(content: object) -> None:
    with pytest.raises(InvalidAnnotationError):
        read_segmentation(content)


def test_a_category_no_worker_painted_keeps_its_configured_colour() -> None:
    configured = {"person": "#2ca02c", "animal": "#ff0000", "sky": "#1f77b4"}
    table = build_class_table(["person", "animal", "sky"], [{"person": "#2ca02c"}], configured)
    assert table.colors == ("#ffffff", "#2ca02c", "#ff0000", "#1f77b4")
    # Without the label set, an unpainted category takes a palette colour no other class has.
    bare = build_class_table(["person", "animal"], [{"person": "#2ca02c"}])
    assert len(set(bare.colors)) == 3
    # A configured colour a worker already gave another label is not reused.
    clash = build_class_table(["person", "animal"], [{"person": "#ff0000"}], {"animal": "#ff0000"})
    assert clash.colors[2] not in ("#ff0000", "#ffffff")


def indexed_png(classes: list[list[int]], colors: list[str], mode: str = "P") -> bytes:
    """An indexed PNG as a run's gold mask is: value i is class i of ``colors``' table."""
    img = Image.fromarray(np.array(classes, dtype=np.uint8))
    if mode == "P":
        img.putpalette([v for c in colors for v in bytes.fromhex(c[1:])])
    elif mode != "L":
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


GOLD_NAMES = ("BACKGROUND", "person", "animal")
GOLD_COLORS = [BACKGROUND_COLOR, PERSON, ANIMAL]
GOLD = [[0, 1, 2], [2, 2, 0]]


def test_an_indexed_mask_in_the_same_class_order_keeps_its_values_and_gives_its_colours() -> None:
    classes, colors = decode_indexed(indexed_png(GOLD, GOLD_COLORS), GOLD_NAMES, (*GOLD_NAMES, "sky"), size=(3, 2))
    assert classes.tolist() == GOLD and colors == tuple(GOLD_COLORS)


def test_an_indexed_mask_is_read_into_another_class_order_by_name() -> None:
    table = ("BACKGROUND", "sky", "animal", "person")
    classes, _ = decode_indexed(indexed_png(GOLD, GOLD_COLORS), GOLD_NAMES, table)
    assert classes.tolist() == [[0, 3, 2], [2, 2, 0]]
    # A grey-scale PNG holds the same values, without colours.
    classes, colors = decode_indexed(indexed_png(GOLD, GOLD_COLORS, mode="L"), GOLD_NAMES, table)
    assert classes.tolist() == [[0, 3, 2], [2, 2, 0]] and colors == ()


def test_an_indexed_mask_is_refused_when_it_cannot_be_read_as_its_classes() -> None:
    with pytest.raises(InvalidMaskError, match="index 3"):
        decode_indexed(indexed_png([[0, 3]], [*GOLD_COLORS, "#ff0000"]), GOLD_NAMES, GOLD_NAMES)
    with pytest.raises(InvalidMaskError, match="mode RGB"):
        decode_indexed(indexed_png(GOLD, GOLD_COLORS, mode="RGB"), GOLD_NAMES, GOLD_NAMES)
    with pytest.raises(SizeMismatchError):
        decode_indexed(indexed_png(GOLD, GOLD_COLORS), GOLD_NAMES, GOLD_NAMES, size=(2, 3))
    with pytest.raises(InvalidMaskError, match="not a readable PNG"):
        decode_indexed(b"\x89PNG not really", GOLD_NAMES, GOLD_NAMES)
    with pytest.raises(ValueError, match="animal"):
        decode_indexed(indexed_png(GOLD, GOLD_COLORS), GOLD_NAMES, ("BACKGROUND", "person"))


def _soft_mask(seed: int) -> bytes:
    """A worker's RGBA mask with a canvas's soft edges: every alpha, and colours between labels."""
    rng = np.random.default_rng(seed)
    arr = np.zeros((64, 96, 4), dtype=np.uint8)
    arr[8:40, 10:60] = (*bytes.fromhex(PERSON[1:]), 255)
    arr[30:60, 50:90] = (*bytes.fromhex(ANIMAL[1:]), 255)
    noise = rng.integers(0, 256, size=(64, 96), dtype=np.uint8)
    edge = rng.random((64, 96)) < 0.1
    arr[..., 3] = np.where(edge, noise, arr[..., 3])
    buf = io.BytesIO()
    Image.fromarray(arr, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_libvips_and_pillow_decode_a_mask_to_the_same_classes(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from gtaudit.labeling import masks

    if masks._vips is None:
        pytest.skip("pyvips is not installed here")
    png = _soft_mask(seed)
    by_vips = decode_mask(png, PALETTE)
    monkeypatch.setattr(masks, "_vips", None)
    assert np.array_equal(by_vips, decode_mask(png, PALETTE))


def test_a_png_libvips_refuses_is_left_to_pillow() -> None:
    from gtaudit.labeling import masks

    if masks._vips is None:
        pytest.skip("pyvips is not installed here")
    lut = masks._color_lut(tuple(PALETTE))
    png = rgba_png([[P] * 40] * 40)
    assert masks._vips_classes(png[: len(png) // 2], lut) is None  # truncated: libvips says no, Pillow refuses
    assert masks._vips_classes(rgba_png([[P] * 4] * 4, mode="RGB"), lut) is None  # three bands: Pillow's


def reference_decode(rgba: np.ndarray, palette: list[tuple[int, str]]) -> np.ndarray:
    """The colour rules spelled out pixel by pixel: alpha under 128 is background, else the nearest of
    white and the label colours (the earlier on a tie) within the tolerance, else unknown (background)."""
    targets = [(0, BACKGROUND_COLOR), *palette]
    out = np.zeros(rgba.shape[:2], dtype=np.uint8)
    for idx in np.ndindex(out.shape):
        r, g, b, a = (int(v) for v in rgba[idx])
        if a < ALPHA_OPAQUE:
            continue
        dist = [sum((v - t) ** 2 for v, t in zip((r, g, b), bytes.fromhex(c[1:]), strict=True)) for _, c in targets]
        nearest = dist.index(min(dist))
        out[idx] = targets[nearest][0] if dist[nearest] <= SNAP_TOLERANCE**2 else 0
    return out


@pytest.mark.parametrize("stripe", [7, 30, 1 << 17])  # a stripe of part of a row, of two rows, the whole mask
@pytest.mark.parametrize("vips", [True, False])
def test_each_decoder_maps_every_stripe_of_a_mask_by_the_colour_rules(
    stripe: int, vips: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gtaudit.labeling import masks

    if vips and masks._vips is None:
        pytest.skip("pyvips is not installed here")
    rng = np.random.default_rng(stripe)
    colours = np.array([P[:3], A[:3], W[:3], (40, 165, 50), (250, 252, 251), (30, 115, 185)], dtype=np.uint8)
    rgba = np.empty((11, 13, 4), dtype=np.uint8)
    rgba[..., :3] = colours[rng.integers(0, len(colours), size=(11, 13))]
    rgba[..., 3] = rng.choice([0, 60, 127, 128, 200, 255], size=(11, 13))
    rgba[[0, 5, 10], [12, 6, 0]] = (255, 0, 255, 255)  # unknown, in three stripes: under 10 % of the painted
    rgba[3, 3] = (255, 0, 255, 90)  # unknown but unpainted: background, not counted
    png = rgba_png(rgba.tolist())
    monkeypatch.setattr(masks, "_STRIPE_PIXELS", stripe)
    if not vips:
        monkeypatch.setattr(masks, "_vips", None)
    assert decode_mask(png, PALETTE).tolist() == reference_decode(rgba, PALETTE).tolist()
