"""Overlays: the original photo with its consolidated mask blended on top, for the auditors.

Pure rendering, bytes in and bytes out: decoding (with the pixel limit checked on the headers,
before any pixel is decoded), EXIF orientation, the mask reduced to label colours and coverage,
the blend, optional contours and encoding (a report's legend strip is ``gtaudit.overlay.legend``).
No AWS here: reading masks from S3 and writing overlays back is ``gtaudit.overlay.jobs``.

Cost model (3968x2976, one core): decoding the JPEG and the mask and encoding the result are the
floor. On top of it, for labeling_post's indexed masks, one pass expands 64-row strips of the mask
through a palette of *premultiplied* label colours (colour x weight, weight) and one C blend
(``Image.paste`` with an ``RGBa`` mask: ``out = colour x w + out x (255 - w) / 255``, one multiply
a byte) covers each strip's labelled bounding box. Strips stay in the CPU cache; strips without
labels are skipped. No numpy on the full frame, no PNG encoding. Other masks (RGB, RGBA, or an
outline) take weights as an ``L`` image and ``Image.paste``'s straight blend.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image, ImageChops, ImageFilter, ImageOps

from gtaudit.exceptions import GtauditError, InvalidImageError, InvalidMaskError, SizeMismatchError
from gtaudit.overlay.legend import add_legend

MAX_PIXELS_ENV = "GTAUDIT_MAX_PIXELS"
# 50 MP admits a 48 MP phone photo (8064x6048) and keeps one render under ~0.5 GB.
DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_QUALITY = 90
ORIGINAL_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF")  # JPEG includes phones' multi-picture (MPO) files
MASK_FORMATS = ("PNG",)
OUTPUT_FORMATS = ("JPEG", "PNG", "WEBP")
_WHITE = (255, 255, 255)
_ORIENTATION = 0x0112


def max_pixels_from_env() -> int:
    """The pixel limit from ``GTAUDIT_MAX_PIXELS``, else ``DEFAULT_MAX_PIXELS``."""
    value = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value)
    except ValueError:
        raise ValueError(f"{MAX_PIXELS_ENV} must be a positive integer, got {value!r}") from None
    if limit <= 0:
        raise ValueError(f"{MAX_PIXELS_ENV} must be a positive integer, got {value!r}")
    return limit


def _unreadable(what: str, formats: tuple[str, ...], exc: BaseException) -> str:
    """Why an image could not be decoded, in words that name the cause (never the stream object's repr)."""
    text = str(exc)
    if "truncated" in text.lower():
        return f"{what} is truncated"
    if "cannot identify image file" in text:
        return f"{what} is not a {'/'.join(formats)} image"
    return f"{what} cannot be decoded ({type(exc).__name__}: {text[:200]})"


def _open(data: bytes, formats: tuple[str, ...], what: str, error: type[GtauditError], limit: int) -> Image.Image:
    """Open (header only) and apply the pixel limit before any pixel is decoded."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"{what} must be bytes, got {type(data).__name__}")
    try:
        im = Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError as exc:
        raise error(f"{what} is too large to decode: {exc}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise error(_unreadable(what, formats, exc)) from exc
    w, h = im.size
    if w * h > limit:
        raise error(f"{what} is {w}x{h} = {w * h:,} pixels, the limit is {limit:,} ({MAX_PIXELS_ENV})")
    if w == 0 or h == 0:
        raise error(f"{what} is empty ({w}x{h})")
    return im


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1 to 8), 1 when absent or unreadable."""
    try:
        value = im.getexif().get(_ORIENTATION, 1)
    except (OSError, ValueError, SyntaxError):
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _displayed_size(im: Image.Image) -> tuple[int, int]:
    """The size after EXIF orientation, read from the header without decoding."""
    w, h = im.size
    return (h, w) if _orientation(im) in (5, 6, 7, 8) else (w, h)


def displayed_size(image: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """``(width, height)`` of an original as a person sees it (EXIF orientation applied), from its header.

    This is the size the labeling tool shows workers, so it is the size their masks must have.

    Raises
    ------
    InvalidImageError
        Not a JPEG/PNG/WebP/TIFF image, truncated before its header ends, or over ``max_pixels``.
    """
    return _displayed_size(_open(image, ORIGINAL_FORMATS, "image", InvalidImageError, max_pixels))


def _flatten(im: Image.Image) -> Image.Image:
    """An image with alpha, as displayed on a white page; exact where it is opaque."""
    rgba = im.convert("RGBA")
    alpha = rgba.getchannel("A")
    if alpha.getextrema() == (255, 255):
        return rgba.convert("RGB")
    out = Image.new("RGB", rgba.size, _WHITE)
    out.paste(rgba.convert("RGB"), (0, 0), alpha)
    return out


def _to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB pixels of any original mode (16-bit scaled down, alpha flattened onto white)."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode.startswith("I;16") or mode == "I":
        # 16-bit grey: 0..65535 -> 0..255 (Pillow's own convert would clip at 255 instead).
        return im.convert("I").point(lambda v: v / 257).convert("L").convert("RGB")
    if mode in ("RGBA", "LA", "La", "RGBa", "PA") or (mode == "P" and "transparency" in im.info):
        return _flatten(im)
    return im.convert("RGB")


def _icc_for_rgb(im: Image.Image) -> bytes | None:
    """The original's ICC profile if it describes RGB data (so colours display as in the original)."""
    icc = im.info.get("icc_profile")
    if isinstance(icc, bytes) and len(icc) >= 20 and icc[16:20] == b"RGB " and im.mode in ("RGB", "RGBA", "P"):
        return icc
    return None


def _decode_original(im: Image.Image) -> tuple[Image.Image, bytes | None]:
    """(the opened original decoded, oriented and in 8-bit RGB; its RGB ICC profile)."""
    try:
        icc = _icc_for_rgb(im)
        # exif_transpose copies the whole image even when there is nothing to do.
        oriented = ImageOps.exif_transpose(im) if _orientation(im) != 1 else im
        rgb = _to_rgb(oriented)
        rgb.load()
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(f"image is too large to decode: {exc}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidImageError(_unreadable("image", ORIGINAL_FORMATS, exc)) from exc
    return rgb, icc


@dataclass(frozen=True, slots=True)
class _MaskLayers:
    """A mask reduced to what blending needs: label colours and per-pixel label coverage (0..255)."""

    colour: Image.Image  # P whose palette holds the label colours, or RGB / RGBA
    coverage_lut: list[int] | None = None  # P: coverage of each palette index

    def alpha(self, box: tuple[int, int, int, int], alpha8: int) -> Image.Image:
        """Blend weights (L) in ``box``: label coverage scaled by ``alpha8 / 255``."""
        strip = self.colour.crop(box)
        if self.coverage_lut is not None:
            # One table look-up on the 8-bit index gives the weights directly.
            return strip.point([(c * alpha8 + 127) // 255 for c in self.coverage_lut], "L")
        bands = strip.split()
        # Labelled where the darkest channel is below 255 (not white) ...
        darkest = ImageChops.darker(ImageChops.darker(bands[0], bands[1]), bands[2])
        weights = darkest.point([alpha8] * 255 + [0])
        # ... weighted by the mask's alpha (0 on a transparent background).
        return ImageChops.multiply(weights, bands[3]) if len(bands) == 4 else weights

    def premultiplied_palette(self, alpha8: int) -> bytes:
        """A P mask's palette as RGBA entries ``(r w, g w, b w, w)`` (each ``/ 255``, rounded) with
        ``w`` the entry's coverage scaled by ``alpha8 / 255``: what ``Image.paste`` wants in ``RGBa``."""
        assert self.coverage_lut is not None
        palette = self.colour.getpalette("RGB") or []
        palette += [0] * (768 - len(palette))
        entries = bytearray()
        for i, coverage in enumerate(self.coverage_lut):
            w = (coverage * alpha8 + 127) // 255
            entries += bytes([*((c * w + 127) // 255 for c in palette[3 * i : 3 * i + 3]), w])
        return bytes(entries)

    def key_bands(self) -> list[Image.Image]:
        """Full-frame bands whose changes mark region boundaries (for contours)."""
        labelled = self.alpha((0, 0, *self.colour.size), 255).point(_NONZERO_LUT)
        if self.coverage_lut is not None:
            return [self.colour.point(list(range(256)), "L"), labelled]
        return [*self.colour.split()[:3], labelled]


def _mask_layers(mask: Image.Image) -> _MaskLayers:
    """Split a decoded mask into colours and coverage; white or transparent pixels are background."""
    mode = mask.mode
    if mode == "P":
        palette = mask.getpalette("RGB") or []
        palette = palette + [0] * (768 - len(palette))
        trns = mask.info.get("transparency")
        alphas = [255] * 256
        if isinstance(trns, bytes):
            alphas[: len(trns)] = list(trns)
        elif isinstance(trns, int):
            alphas[trns] = 0
        lut = [0 if tuple(palette[3 * i : 3 * i + 3]) == _WHITE else alphas[i] for i in range(256)]
        return _MaskLayers(mask, coverage_lut=lut)
    if mode in ("RGB", "RGBA"):
        # Weights are computed strip by strip, where they are used (see _MaskLayers.alpha).
        return _MaskLayers(mask)
    if mode in ("L", "LA", "1"):
        return _MaskLayers(mask.convert("RGBA" if mode == "LA" else "RGB"))
    raise InvalidMaskError(f"mask mode {mode!r} is not a colour mask (expected P, RGB, RGBA, L or LA)")


_NONZERO_LUT = [0] + [255] * 255


def _decode_mask(mask: bytes, limit: int) -> Image.Image:
    return _open(mask, MASK_FORMATS, "mask", InvalidMaskError, limit)


def _load_mask(im: Image.Image) -> _MaskLayers:
    try:
        im.load()
        return _mask_layers(im)
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidMaskError(_unreadable("mask", MASK_FORMATS, exc)) from exc


def check_opacity(opacity: float) -> int:
    """``opacity`` as an 8-bit alpha; raise ``ValueError`` naming it if it is not in [0, 1]."""
    if isinstance(opacity, bool) or not isinstance(opacity, int | float) or not 0.0 <= float(opacity) <= 1.0:
        raise ValueError(f"opacity must be a number in [0, 1], got {opacity!r}")
    return round(float(opacity) * 255)


def check_outline(outline: int) -> int:
    """``outline`` itself; raise ``ValueError`` naming it if it is not an integer in [0, ``MAX_OUTLINE``]."""
    if isinstance(outline, bool) or not isinstance(outline, int) or not 0 <= outline <= MAX_OUTLINE:
        raise ValueError(f"outline must be an integer number of pixels in [0, {MAX_OUTLINE}], got {outline!r}")
    return outline


# Rows per strip: the mask, weights and colours of one strip stay in the CPU cache while they are
# blended, and strips without labels are skipped.
_STRIP = 64


def _blend_into(base: Image.Image, layers: _MaskLayers, alpha8: int, outline: int) -> None:
    """Blend the mask onto ``base`` (an RGB image this module owns), strip by strip."""
    edges = _contour(layers, outline) if outline else None
    if alpha8 == 0 and edges is None:
        return
    if edges is None and layers.coverage_lut is not None:
        _blend_premultiplied(base, layers.colour, layers.premultiplied_palette(alpha8))
        return
    width, height = base.size
    for top in range(0, height, _STRIP):
        box = (0, top, width, min(height, top + _STRIP))
        alpha = layers.alpha(box, alpha8) if alpha8 else None
        if edges is not None:
            strip_edges = edges.crop(box)
            alpha = strip_edges if alpha is None else ImageChops.lighter(alpha, strip_edges)
        assert alpha is not None
        bbox = alpha.getbbox()
        if bbox is None:
            continue
        if bbox != (0, 0, *alpha.size):
            alpha = alpha.crop(bbox)
        at = (bbox[0], top + bbox[1])
        colour = layers.colour.crop((*at, bbox[2], top + bbox[3]))
        base.paste(colour if colour.mode == "RGB" else colour.convert("RGB"), at, alpha)


def _blend_premultiplied(base: Image.Image, mask: Image.Image, palette: bytes) -> None:
    """Blend a P mask whose weighted colours are ``palette`` (see ``premultiplied_palette``) onto ``base``.

    The straight blend (``L`` weights, RGB colours) costs a P -> RGB expansion, an ``L`` look-up and
    two multiplies a byte; here one expansion gives colours and weights together, and Pillow's
    ``RGBa`` paste does one. The result differs from the straight blend by at most 1 (two roundings
    instead of one); weights 0 and 255 give exactly the original and the label colour.
    """
    width, height = base.size
    for top in range(0, height, _STRIP):
        strip = mask.crop((0, top, width, min(height, top + _STRIP)))
        strip.info.pop("transparency", None)  # already in the palette's weights; convert would re-apply it
        strip.putpalette(palette, "RGBA")
        weighted = strip.convert("RGBA")
        bbox = weighted.getbbox()  # of the alpha band: the labelled pixels
        if bbox is None:
            continue
        if bbox != (0, 0, *weighted.size):
            weighted = weighted.crop(bbox)
        # The same bytes read as premultiplied RGBa, which Image.paste blends without un-premultiplying.
        premultiplied = Image.frombuffer("RGBa", weighted.size, weighted.tobytes(), "raw", "RGBa", 0, 1)
        base.paste(premultiplied, (bbox[0], top + bbox[1]), premultiplied)


MAX_OUTLINE = 8


def _contour(layers: _MaskLayers, width: int) -> Image.Image:
    """Opaque weights (L) along the inner edge of every labelled region, ``width`` pixels wide."""
    edge: Image.Image | None = None
    for band in layers.key_bands():
        h = band.height
        for dx, dy in ((1, 0), (0, 1)):
            # diff[p] = |band[p] - band[p - (dx, dy)]|; the wrapped-around first column/row is cleared.
            diff = ImageChops.difference(band, ImageChops.offset(band, dx, dy))
            diff.paste(0, (0, 0, 1, h) if dx else (0, 0, band.width, 1))
            # Mark both pixels of every differing pair.
            both = ImageChops.lighter(diff, ImageChops.offset(diff, -dx, -dy))
            edge = both if edge is None else ImageChops.lighter(edge, both)
    assert edge is not None
    edge = edge.point(_NONZERO_LUT)
    if width > 1:
        # A box blur spreads every edge pixel over a (2w-1)-square; any non-zero result is "near".
        edge = edge.filter(ImageFilter.BoxBlur(width - 1)).point(_NONZERO_LUT)
    labelled = layers.key_bands()[-1]
    return ImageChops.multiply(edge, labelled)


def blend_overlay(image: Image.Image, mask: Image.Image, *, opacity: float = 0.5, outline: int = 0) -> Image.Image:
    """Blend a decoded mask onto a decoded, already oriented image.

    Parameters
    ----------
    image
        The original, any mode; converted to 8-bit RGB as ``render_overlay`` does. Not modified.
    mask
        P, RGB, RGBA, L or LA. White (``#ffffff``) or fully transparent pixels are background.
    opacity
        Weight of the label colour on labelled pixels, 0 to 1.
    outline
        Width in pixels of an opaque contour along each labelled region's edge; 0 for none.

    Returns
    -------
    PIL.Image.Image
        A new RGB image of ``image``'s size.

    Raises
    ------
    ValueError
        ``opacity`` or ``outline`` out of range.
    SizeMismatchError
        The mask's size differs from the image's.
    InvalidMaskError
        The mask's mode is not a colour mask.
    """
    alpha8 = check_opacity(opacity)
    outline = check_outline(outline)
    if mask.size != image.size:
        raise SizeMismatchError(
            f"mask is {mask.size[0]}x{mask.size[1]} but the image is {image.size[0]}x{image.size[1]}"
        )
    layers = _mask_layers(mask)
    rgb = _to_rgb(image)
    base = rgb.copy() if rgb is image else rgb
    _blend_into(base, layers, alpha8, outline)
    return base


def _encode(im: Image.Image, fmt: str, quality: int, icc: bytes | None) -> bytes:
    out = io.BytesIO()
    extra: dict[str, Any] = {"icc_profile": icc} if icc else {}
    if fmt == "JPEG":
        # 4:4:4 keeps label edges crisp (4:2:0 smears colour across boundaries); no EXIF: the
        # orientation is already applied. Same pixels + same settings -> same bytes.
        im.save(out, "JPEG", quality=quality, subsampling=0, optimize=False, progressive=False, **extra)
    elif fmt == "WEBP":
        im.save(out, "WEBP", quality=quality, method=4, **extra)
    else:
        im.save(out, "PNG", compress_level=1, **extra)
    return out.getvalue()


def render_overlay(
    image: bytes,
    mask: bytes,
    *,
    opacity: float = 0.5,
    outline: int = 0,
    quality: int = DEFAULT_QUALITY,
    format: Literal["JPEG", "PNG", "WEBP"] = "JPEG",
    max_pixels: int | None = None,
    legend: Sequence[tuple[str, str]] | None = None,
    font: str | None = None,
) -> bytes:
    """Render the original with its mask blended on top, encoded (JPEG by default).

    Parameters
    ----------
    image
        The original: JPEG, PNG, WebP or TIFF; RGB, RGBA, L, LA, P, CMYK, I;16 or I (16-bit grey).
        Its EXIF orientation is applied first; alpha is flattened onto white; 16-bit is scaled to
        8-bit (``v / 257``).
    mask
        A consolidated mask PNG: labeling_post's indexed PNG (index 0 BACKGROUND ``#ffffff``) or
        the built-in type's RGB/RGBA PNG (white or transparent background).
    opacity
        Weight of the label colour on labelled pixels: 0 returns the original's pixels, 1 the
        label colours. Background pixels always keep the original's value.
    outline
        Width in pixels of an opaque contour along each region's edge (0: none). With
        ``opacity=0`` this is an outline-only overlay.
    quality
        JPEG/WebP quality, 1 to 95.
    format
        ``"JPEG"``, ``"PNG"`` or ``"WEBP"``.
    max_pixels
        Refuse an image or mask with more pixels than this (a decompression-bomb guard);
        default ``GTAUDIT_MAX_PIXELS`` or 50,000,000.
    legend
        ``(label name, "#rrggbb")`` pairs: adds a strip below the image with a swatch and the
        name of each (any Unicode; the output is then taller than the original).
    font
        A TrueType/OpenType file for the legend (e.g. a CJK font); default Pillow's built-in
        font, which draws unsupported characters as boxes.

    Returns
    -------
    bytes
        The encoded overlay, the size of the displayed (oriented) original. Deterministic: the
        same inputs give the same bytes.

    Raises
    ------
    ValueError
        An option out of range.
    InvalidImageError
        The original cannot be decoded or exceeds the pixel limit.
    InvalidMaskError
        The mask cannot be decoded, is not a colour mask, or exceeds the pixel limit.
    SizeMismatchError
        The mask's size differs from the displayed size of the original (both sizes named).
    """
    alpha8 = check_opacity(opacity)
    outline = check_outline(outline)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 95:
        raise ValueError(f"quality must be an integer in [1, 95], got {quality!r}")
    fmt = str(format).upper()
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(f"format must be one of {OUTPUT_FORMATS}, got {format!r}")
    limit = max_pixels_from_env() if max_pixels is None else max_pixels
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")

    # Sizes first, from the headers: a mismatch costs no decoding.
    header = _open(image, ORIGINAL_FORMATS, "image", InvalidImageError, limit)
    mask_im = _decode_mask(mask, limit)
    displayed = _displayed_size(header)
    if mask_im.size != displayed:
        raise SizeMismatchError(
            f"mask is {mask_im.size[0]}x{mask_im.size[1]} but the image is displayed at "
            f"{displayed[0]}x{displayed[1]} (stored {header.size[0]}x{header.size[1]}, EXIF orientation applied)"
        )
    # Decoded here, from bytes: ``base`` is ours to blend into (no caller's object is touched).
    base, icc = _decode_original(header)
    if base.size != mask_im.size:  # orientation from XMP rather than EXIF
        raise SizeMismatchError(
            f"mask is {mask_im.size[0]}x{mask_im.size[1]} but the image is displayed at {base.size[0]}x{base.size[1]}"
        )
    layers = _load_mask(mask_im)
    _blend_into(base, layers, alpha8, outline)
    if legend:
        base = add_legend(base, legend, font=font)
    return _encode(base, fmt, quality, icc)


__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_QUALITY",
    "MAX_OUTLINE",
    "MAX_PIXELS_ENV",
    "blend_overlay",
    "check_opacity",
    "check_outline",
    "max_pixels_from_env",
    "render_overlay",
]
