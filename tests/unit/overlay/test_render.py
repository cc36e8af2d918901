"""render_overlay and blend_overlay on tiny synthetic images, with exact expected pixels."""

from __future__ import annotations

import io
import zlib
from typing import Any

import numpy as np
import pytest
from gtaudit.exceptions import InvalidImageError, InvalidMaskError, SizeMismatchError
from gtaudit.overlay.render import MAX_PIXELS_ENV, blend_overlay, render_overlay
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

WHITE = (255, 255, 255)
GREEN = (44, 160, 44)  # label 1
BLUE = (31, 119, 180)  # label 2


def encode(im: Image.Image, fmt: str = "PNG", **kw: Any) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **kw)
    return out.getvalue()


def p_mask(indices: list[list[int]]) -> Image.Image:
    """labeling_post's mask: P mode, index 0 BACKGROUND #ffffff, 1 green, 2 blue."""
    arr = np.array(indices, dtype=np.uint8)
    im = Image.fromarray(arr, "L").convert("P")
    im.putpalette([*WHITE, *GREEN, *BLUE])
    return im


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def original_2x3() -> Image.Image:
    """Width 3, height 2, every pixel different."""
    arr = np.array(
        [[[10, 20, 30], [40, 50, 60], [70, 80, 90]], [[100, 110, 120], [130, 140, 150], [160, 170, 180]]],
        dtype=np.uint8,
    )
    return Image.fromarray(arr, "RGB")


MASK_2x3 = [[0, 1, 2], [1, 0, 0]]
LABELLED = np.array(MASK_2x3) > 0
COLOURS = np.array([WHITE, GREEN, BLUE], dtype=np.uint8)[np.array(MASK_2x3)]


def render_png(image: bytes, mask: bytes, **kw: Any) -> np.ndarray:
    return pixels(render_overlay(image, mask, format="PNG", **kw))


# ------------------------------------------------------------------------------- the blend itself


def test_opacity_zero_returns_the_original() -> None:
    orig = original_2x3()
    out = render_png(encode(orig), encode(p_mask(MASK_2x3)), opacity=0)
    assert np.array_equal(out, np.asarray(orig))


def test_opacity_one_paints_label_colours_and_keeps_background() -> None:
    orig = original_2x3()
    out = render_png(encode(orig), encode(p_mask(MASK_2x3)), opacity=1)
    assert np.array_equal(out[LABELLED], COLOURS[LABELLED])
    assert np.array_equal(out[~LABELLED], np.asarray(orig)[~LABELLED])


def test_half_opacity_is_the_rounded_alpha_blend() -> None:
    orig = Image.new("RGB", (2, 1), (100, 100, 100))
    mask = p_mask([[1, 0]])
    out = render_png(encode(orig), encode(mask), opacity=0.5)
    # alpha = round(0.5 * 255) = 128: 100 + (44 - 100) * 128/255 = 71.9 -> 72, and so on.
    assert out[0, 0].tolist() == [72, 130, 72]
    assert out[0, 1].tolist() == [100, 100, 100]


def test_default_output_is_a_jpeg_of_the_displayed_size() -> None:
    out = render_overlay(encode(original_2x3()), encode(p_mask(MASK_2x3)))
    im = Image.open(io.BytesIO(out))
    assert im.format == "JPEG"
    assert im.size == (3, 2)
    assert "exif" not in im.info


def test_jpeg_output_is_deterministic() -> None:
    rng = np.random.default_rng(1)
    orig = Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    mask = encode(p_mask(rng.integers(0, 3, (40, 60)).tolist()))
    a = render_overlay(encode(orig, "JPEG"), mask, opacity=0.4, outline=1)
    b = render_overlay(encode(orig, "JPEG"), mask, opacity=0.4, outline=1)
    assert a == b


def test_all_background_mask_leaves_the_original() -> None:
    orig = original_2x3()
    out = render_png(encode(orig), encode(p_mask([[0, 0, 0], [0, 0, 0]])), opacity=1)
    assert np.array_equal(out, np.asarray(orig))


# ------------------------------------------------------------------------------- mask kinds


def test_rgb_mask_with_white_background() -> None:
    orig = original_2x3()
    rgb_mask = p_mask(MASK_2x3).convert("RGB")
    out = render_png(encode(orig), encode(rgb_mask), opacity=1)
    assert np.array_equal(out[LABELLED], COLOURS[LABELLED])
    assert np.array_equal(out[~LABELLED], np.asarray(orig)[~LABELLED])


def test_rgba_mask_with_transparent_background() -> None:
    # GT's built-in type: label colours on a transparent background (whose RGB can be anything).
    orig = original_2x3()
    arr = np.zeros((2, 3, 4), dtype=np.uint8)
    arr[LABELLED, :3] = COLOURS[LABELLED]
    arr[LABELLED, 3] = 255
    out = render_png(encode(orig), encode(Image.fromarray(arr, "RGBA")), opacity=1)
    assert np.array_equal(out[LABELLED], COLOURS[LABELLED])
    assert np.array_equal(out[~LABELLED], np.asarray(orig)[~LABELLED])


def test_partial_mask_alpha_scales_the_weight() -> None:
    orig = Image.new("RGB", (2, 1), (100, 100, 100))
    mask = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    mask.putpixel((0, 0), (200, 200, 200, 128))  # an anti-aliased edge pixel
    out = render_png(encode(orig), encode(mask), opacity=1)
    # weight = 255 * 128 / 255 -> 128: 100 + 100 * 128/255 = 150.2 -> 150
    assert out[0].tolist() == [[150, 150, 150], [100, 100, 100]]


def test_grey_mask_with_white_background() -> None:
    orig = Image.new("RGB", (2, 1), (100, 100, 100))
    mask = Image.new("L", (2, 1), 255)
    mask.putpixel((1, 0), 0)
    out = render_png(encode(orig), encode(mask), opacity=1)
    assert out[0].tolist() == [[100, 100, 100], [0, 0, 0]]


def test_near_white_label_colour_is_still_a_label() -> None:
    orig = Image.new("RGB", (2, 1), (0, 0, 0))
    mask = Image.new("RGB", (2, 1), WHITE)
    mask.putpixel((0, 0), (255, 255, 254))
    out = render_png(encode(orig), encode(mask), opacity=1)
    assert out[0].tolist() == [[255, 255, 254], [0, 0, 0]]


def test_p_mask_with_transparent_background_index() -> None:
    orig = original_2x3()
    mask = p_mask(MASK_2x3)
    mask.putpalette([0, 0, 0, *GREEN, *BLUE])  # background black but transparent
    out = render_png(encode(orig), encode(mask, transparency=0), opacity=1)
    assert np.array_equal(out[LABELLED], COLOURS[LABELLED])
    assert np.array_equal(out[~LABELLED], np.asarray(orig)[~LABELLED])


def test_grey_mode_mask_is_refused() -> None:
    mask = Image.new("I;16", (3, 2))
    with pytest.raises(InvalidMaskError, match="I;16"):
        render_overlay(encode(original_2x3()), encode(mask))


# ------------------------------------------------------------------------------- originals


def test_exif_orientation_is_applied_before_blending() -> None:
    # Stored 3 wide x 2 high with Orientation=6 (rotate 90 degrees clockwise to display): 2x3.
    stored = original_2x3()
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(stored, "PNG", exif=exif.tobytes())
    # Orientation 6 means "rotate 90 degrees clockwise to display": rows become D A / E B / F C.
    mask = p_mask([[0, 1], [0, 0], [2, 0]])
    out = render_png(data, encode(mask), opacity=1)
    assert out.shape == (3, 2, 3)
    assert out[0, 0].tolist() == [100, 110, 120]  # D, background
    assert out[0, 1].tolist() == list(GREEN)  # A, labelled
    assert out[1].tolist() == [[130, 140, 150], [40, 50, 60]]  # E B
    assert out[2, 0].tolist() == list(BLUE)  # F, labelled
    assert out[2, 1].tolist() == [70, 80, 90]  # C


def test_mask_in_stored_orientation_is_a_size_mismatch() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(original_2x3(), "PNG", exif=exif.tobytes())
    with pytest.raises(SizeMismatchError, match=r"mask is 3x2 but the image is displayed at 2x3"):
        render_overlay(data, encode(p_mask(MASK_2x3)))


def test_size_mismatch_names_both_sizes() -> None:
    with pytest.raises(SizeMismatchError) as err:
        render_overlay(encode(Image.new("RGB", (5, 4))), encode(p_mask(MASK_2x3)))
    assert "3x2" in str(err.value)
    assert "5x4" in str(err.value)


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        ("L", 77, (77, 77, 77)),
        ("P", 1, GREEN),
        ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
        ("I;16", 25700, (100, 100, 100)),  # 16-bit grey: v / 257
        ("I;16", 65535, (255, 255, 255)),
        ("I", 51400, (200, 200, 200)),
        ("RGBA", (10, 20, 30, 255), (10, 20, 30)),
        ("LA", (90, 255), (90, 90, 90)),
    ],
)
def test_original_modes_keep_background_and_blend_labels(mode: str, value: Any, expected: tuple[int, ...]) -> None:
    orig = Image.new(mode, (2, 1), value)
    if mode == "P":
        orig.putpalette([0, 0, 0, *GREEN])
    fmt = "TIFF" if mode in ("CMYK", "I") else "PNG"
    data = encode(orig, fmt)
    assert Image.open(io.BytesIO(data)).mode == mode
    out = render_png(data, encode(p_mask([[0, 2]])), opacity=1)
    assert out[0, 0].tolist() == list(expected)
    assert out[0, 1].tolist() == list(BLUE)


def test_semi_transparent_original_is_flattened_onto_white() -> None:
    orig = Image.new("RGBA", (2, 1), (0, 0, 0, 0))
    orig.putpixel((1, 0), (200, 0, 0, 255))
    out = render_png(encode(orig), encode(p_mask([[0, 0]])), opacity=1)
    assert out[0].tolist() == [[255, 255, 255], [200, 0, 0]]


@pytest.mark.parametrize(("fmt", "kw"), [("PNG", {}), ("WEBP", {"lossless": True}), ("TIFF", {})])
def test_lossless_formats_give_exact_pixels(fmt: str, kw: dict[str, Any]) -> None:
    orig = original_2x3()
    out = render_png(encode(orig, fmt, **kw), encode(p_mask(MASK_2x3)), opacity=1)
    assert np.array_equal(out[~LABELLED], np.asarray(orig)[~LABELLED])
    assert np.array_equal(out[LABELLED], COLOURS[LABELLED])


def test_jpeg_original_background_matches_its_decoded_pixels() -> None:
    rng = np.random.default_rng(2)
    orig = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    data = encode(orig, "JPEG", quality=90)
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    mask = np.zeros((16, 16), dtype=np.uint8)
    mask[4:8, 4:8] = 1
    out = render_png(data, encode(p_mask(mask.tolist())), opacity=1)
    assert np.array_equal(out[mask == 0], decoded[mask == 0])
    assert (out[mask == 1] == GREEN).all()


def test_rgb_icc_profile_is_kept() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = render_overlay(encode(original_2x3(), icc_profile=icc), encode(p_mask(MASK_2x3)))
    assert Image.open(io.BytesIO(out)).info.get("icc_profile") == icc


# ------------------------------------------------------------------------------- outline


def test_outline_draws_the_inner_edge_only() -> None:
    orig = Image.new("RGB", (7, 7), (0, 0, 0))
    idx = np.zeros((7, 7), dtype=np.uint8)
    idx[1:6, 1:6] = 1  # a 5x5 square
    out = render_png(encode(orig), encode(p_mask(idx.tolist())), opacity=0, outline=1)
    edge = np.zeros((7, 7), dtype=bool)
    edge[1:6, 1:6] = True
    edge[2:5, 2:5] = False
    assert (out[edge] == GREEN).all()
    assert (out[~edge] == 0).all()


def test_outline_between_two_labels_marks_both_sides() -> None:
    orig = Image.new("RGB", (4, 1), (0, 0, 0))
    out = render_png(encode(orig), encode(p_mask([[1, 1, 2, 2]])), opacity=0, outline=1)
    assert out[0].tolist() == [[0, 0, 0], list(GREEN), list(BLUE), [0, 0, 0]]


# ------------------------------------------------------------------------------- guards


def test_pixel_limit_parameter() -> None:
    with pytest.raises(InvalidImageError, match="limit is 5"):
        render_overlay(encode(original_2x3()), encode(p_mask(MASK_2x3)), max_pixels=5)


def test_pixel_limit_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_PIXELS_ENV, "5")
    with pytest.raises(InvalidImageError, match=MAX_PIXELS_ENV):
        render_overlay(encode(original_2x3()), encode(p_mask(MASK_2x3)))
    assert render_overlay(encode(original_2x3()), encode(p_mask(MASK_2x3)), max_pixels=6)


def test_pixel_limit_applies_to_the_mask() -> None:
    with pytest.raises(InvalidMaskError, match="pixels"):
        render_overlay(encode(Image.new("RGB", (1, 1))), encode(p_mask([[0] * 40] * 40)), max_pixels=100)


def test_pixel_limit_checked_before_decoding() -> None:
    # A header claiming 9000 x 9000 (81 MP) with no pixel data: refused by size, not a decode error.
    header = encode(Image.new("L", (1, 1)))
    ihdr = b"IHDR" + (9_000).to_bytes(4, "big") * 2 + header[24:29]
    big = header[:12] + ihdr + zlib.crc32(ihdr).to_bytes(4, "big") + header[33:]
    with pytest.raises(InvalidImageError, match="81,000,000 pixels, the limit is 50,000,000"):
        render_overlay(big, encode(p_mask([[0]])))


def test_undecodable_inputs() -> None:
    with pytest.raises(InvalidImageError):
        render_overlay(b"not an image", encode(p_mask(MASK_2x3)))
    with pytest.raises(InvalidMaskError):
        render_overlay(encode(original_2x3()), b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(InvalidMaskError):  # masks are PNG only
        render_overlay(encode(original_2x3()), encode(p_mask(MASK_2x3).convert("RGB"), "JPEG"))


def test_truncated_original() -> None:
    data = encode(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    with pytest.raises(InvalidImageError):
        render_overlay(data[: len(data) // 2], encode(p_mask([[0] * 64] * 64)))


@pytest.mark.parametrize(
    ("kw", "name"),
    [
        ({"opacity": -0.1}, "opacity"),
        ({"opacity": 1.5}, "opacity"),
        ({"opacity": float("nan")}, "opacity"),
        ({"outline": -1}, "outline"),
        ({"quality": 0}, "quality"),
        ({"format": "GIF"}, "format"),
        ({"max_pixels": 0}, "max_pixels"),
    ],
)
def test_bad_options_name_the_parameter(kw: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        render_overlay(encode(original_2x3()), encode(p_mask(MASK_2x3)), **kw)


def test_blend_overlay_does_not_mutate_its_inputs() -> None:
    orig = original_2x3()
    mask = p_mask(MASK_2x3)
    before = (orig.tobytes(), mask.tobytes())
    out = blend_overlay(orig, mask, opacity=1, outline=1)
    assert (orig.tobytes(), mask.tobytes()) == before
    assert out is not orig
    assert np.array_equal(np.asarray(out)[LABELLED], COLOURS[LABELLED])


def test_blend_overlay_checks_size() -> None:
    with pytest.raises(SizeMismatchError, match=r"3x2.*4x4"):
        blend_overlay(Image.new("RGB", (4, 4)), p_mask(MASK_2x3))


# ------------------------------------------------------------------------------- property


@settings(max_examples=60, deadline=None)
@given(
    w=st.integers(1, 12),
    h=st.integers(1, 12),
    seed=st.integers(0, 2**32 - 1),
    mode=st.sampled_from(["RGB", "L", "RGBA"]),
    outline_ok=st.booleans(),
)
def test_property_opacity_zero_returns_the_original(w: int, h: int, seed: int, mode: str, outline_ok: bool) -> None:
    rng = np.random.default_rng(seed)
    bands = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    arr = rng.integers(0, 256, (h, w, bands), dtype=np.uint8)
    if mode == "RGBA":
        arr[..., 3] = 255
    orig = Image.fromarray(arr.squeeze(-1) if bands == 1 else arr, mode)
    mask = p_mask(rng.integers(0, 3, (h, w)).tolist())
    out = render_png(encode(orig), encode(mask), opacity=0)
    assert np.array_equal(out, np.asarray(orig.convert("RGB")))


@settings(max_examples=40, deadline=None)
@given(
    w=st.integers(1, 90),
    h=st.integers(1, 150),  # more than two 64-row strips
    seed=st.integers(0, 2**32 - 1),
    opacity=st.floats(0, 1),
)
def test_property_indexed_mask_is_within_one_of_the_exact_blend(w: int, h: int, seed: int, opacity: float) -> None:
    # Indexed masks take the premultiplied blend (two roundings): at most 1 from the exact value,
    # exact where the weight is 0 (background) or 255 (opaque label colour).
    rng = np.random.default_rng(seed)
    orig = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    palette = rng.integers(0, 256, (8, 3))
    palette[0] = WHITE
    coverage = rng.choice([0, 255, *rng.integers(1, 255, 2).tolist()], 8)
    idx = rng.integers(0, 8, (h, w)).astype(np.uint8)
    if rng.random() < 0.5:
        idx[: h // 2] = 0  # whole strips without labels
    mask = Image.fromarray(idx, "L").convert("P")
    mask.putpalette(palette.astype(np.uint8).tobytes())
    mask.info["transparency"] = bytes(coverage.astype(np.uint8).tolist())
    out = np.asarray(blend_overlay(Image.fromarray(orig), mask, opacity=opacity), np.int64)
    weight = (np.where((palette == 255).all(axis=1), 0, coverage) * round(opacity * 255) + 127) // 255
    weights = weight[idx][..., None]
    exact = orig + (palette[idx] - orig.astype(np.int64)) * weights / 255
    assert np.abs(out - exact).max() <= 1
    assert np.array_equal(out[weight[idx] == 0], orig[weight[idx] == 0])
    assert np.array_equal(out[weight[idx] == 255], palette[idx][weight[idx] == 255])


def test_indexed_mask_overlay_looks_as_the_straight_blend_within_jpeg_noise() -> None:
    # The same mask as RGBA takes the straight blend (one rounding), as every mask did before the
    # premultiplied one: the two JPEGs may differ only by what JPEG's own rounding adds anyway.
    rng = np.random.default_rng(5)
    h, w = 192, 256
    gradient = np.linspace(0, 255, w)[None, :, None] + rng.normal(0, 12, (h, w, 3))
    orig = Image.fromarray(np.clip(gradient, 0, 255).astype(np.uint8))
    idx = np.zeros((h, w), np.uint8)
    idx[20:150, 30:200] = 1
    idx[60:190, 120:250] = 2
    idx[::7, ::5] = 0
    mask = p_mask(idx.tolist())
    straight = np.asarray(blend_overlay(orig, mask.convert("RGBA")), np.int16)
    assert np.abs(np.asarray(blend_overlay(orig, mask), np.int16) - straight).max() <= 1
    jpeg_of_straight = pixels(encode(Image.fromarray(straight.astype(np.uint8)), "JPEG", quality=90, subsampling=0))
    noise = np.abs(jpeg_of_straight.astype(np.int16) - straight).mean()
    out = pixels(render_overlay(encode(orig), encode(mask))).astype(np.int16)
    assert np.abs(out - straight).mean() <= 1.02 * noise
    assert np.abs(out - jpeg_of_straight).mean() < noise / 2


# ------------------------------------------------------------------------------- legend


def test_legend_strip_below_the_untouched_overlay() -> None:
    orig = Image.new("RGB", (200, 20), (100, 100, 100))
    mask = p_mask([[0] * 200] * 20)
    legend = [("person 人", "#2ca02c"), ('"vehicle"', "#1f77b4")]
    plain = render_png(encode(orig), encode(mask), opacity=1)
    out = render_png(encode(orig), encode(mask), opacity=1, legend=legend)
    assert out.shape[1] == 200 and out.shape[0] > 20
    assert np.array_equal(out[:20], plain)
    strip = out[20:]
    # Each entry's swatch is drawn in its label's colour.
    for colour in (GREEN, BLUE):
        assert (strip == colour).all(axis=-1).sum() >= 4
    assert (strip == 255).all(axis=-1).mean() > 0.5  # a white strip


def test_legend_wraps_onto_rows_that_fit() -> None:
    orig = Image.new("RGB", (60, 10), (0, 0, 0))
    mask = p_mask([[0] * 60] * 10)
    one = render_png(encode(orig), encode(mask), legend=[("a", "#2ca02c")])
    many = render_png(encode(orig), encode(mask), legend=[(f"label {i}", "#2ca02c") for i in range(6)])
    assert many.shape[0] > one.shape[0] and many.shape[1] == one.shape[1] == 60


def test_legend_rejects_bad_colours_and_fonts() -> None:
    args = (encode(original_2x3()), encode(p_mask(MASK_2x3)))
    with pytest.raises(ValueError, match="colour"):
        render_overlay(*args, legend=[("a", "green")])
    with pytest.raises(ValueError, match="font"):
        render_overlay(*args, legend=[("a", "#00ff00")], font="/nonexistent/font.ttf")
