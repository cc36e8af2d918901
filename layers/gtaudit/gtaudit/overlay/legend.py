"""The legend strip of a report overlay: each label's colour swatch and name below the image.

Not drawn by the overlay Lambda (the audit page shows its own legend, and an overlay keeps the
displayed image's size so an auditor's region note means the same place on the original); asked
for with ``render_overlay(..., legend=...)`` or ``gtaudit overlay --legend``.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from gtaudit.labels import hex_to_rgb

_WHITE = (255, 255, 255)


def _legend_font(size: int, font: str | None) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if font:
        try:
            return ImageFont.truetype(font, size)
        except OSError as exc:
            raise ValueError(f"font {font!r} cannot be loaded: {exc}") from exc
    return ImageFont.load_default(size)


def add_legend(image: Image.Image, entries: Sequence[tuple[str, str]], *, font: str | None = None) -> Image.Image:
    """A new image: ``image`` above a white strip listing each ``(name, "#rrggbb")`` entry.

    Parameters
    ----------
    image
        Any RGB image; not modified.
    entries
        Label names (any Unicode text) and their colours, drawn left to right, wrapping.
    font
        A font file; default Pillow's built-in font.

    Returns
    -------
    PIL.Image.Image
        RGB, as wide as ``image`` and taller by the strip.

    Raises
    ------
    ValueError
        A colour that is not ``#rrggbb``, or a font that cannot be loaded.
    """
    colours = [hex_to_rgb(colour) for _, colour in entries]  # InvalidLabelSetError is a ValueError
    size = max(12, image.width // 80)
    face = _legend_font(size, font)
    pad, swatch, gap = size // 2, size, size
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    # Lay the entries out in rows that fit the image's width.
    rows: list[list[tuple[int, str, tuple[int, int, int]]]] = [[]]
    x = pad
    for (name, _), colour in zip(entries, colours, strict=True):
        text = str(name)
        width = swatch + pad // 2 + int(measure.textlength(text, font=face)) + gap
        if rows[-1] and x + width > image.width - pad:
            rows.append([])
            x = pad
        rows[-1].append((x, text, colour))
        x += width
    line = size + pad
    out = Image.new("RGB", (image.width, image.height + pad + line * len(rows)), _WHITE)
    out.paste(image.convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(out)
    for r, row in enumerate(rows):
        y = image.height + pad + r * line
        for x0, text, colour in row:
            draw.rectangle((x0, y, x0 + swatch - 1, y + swatch - 1), fill=colour, outline=(0, 0, 0))
            draw.text((x0 + swatch + pad // 2, y + swatch // 2), text, fill=(0, 0, 0), font=face, anchor="lm")
    return out


__all__ = ["add_legend"]
