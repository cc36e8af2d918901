"""``gtaudit overlay``: blend a consolidated mask onto its original, as the overlay Lambda does."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from gtaudit.exceptions import GtauditError
from gtaudit.labels import LabelSet, parse_label_set

from gtaudit_local.commands import CommandError

_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``overlay`` subcommand."""
    p = subparsers.add_parser(
        "overlay",
        help="blend a segmentation mask onto its original image",
        description=(
            "Write IMAGE with MASK blended on top: background pixels keep the original's value, labelled pixels "
            "mix the original and the label colour at --opacity. MASK is a consolidated mask PNG (labeling_post's "
            "indexed PNG, or an RGB/RGBA PNG with a white or transparent background). The EXIF orientation of "
            "IMAGE is applied first. The output format follows OUT's extension (.jpg, .png, .webp); '-' writes "
            "JPEG to standard output."
        ),
    )
    p.add_argument("image", type=Path, help="the original (JPEG, PNG, WebP or TIFF)")
    p.add_argument("mask", type=Path, help="the mask PNG, the size of the displayed image")
    p.add_argument("-o", "--output", required=True, help="the overlay file to write, or - for standard output")
    p.add_argument("--opacity", type=float, default=0.5, help="weight of the label colour, 0 to 1 (default 0.5)")
    p.add_argument("--outline", type=int, default=0, help="contour width in pixels along each region (default 0: none)")
    p.add_argument("--quality", type=int, default=90, help="JPEG/WebP quality, 1 to 95 (default 90)")
    p.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="refuse larger images (default: $GTAUDIT_MAX_PIXELS or 50,000,000)",
    )
    p.add_argument(
        "--legend",
        type=Path,
        default=None,
        help="JSON file: labeling_post's internal-color-map, or a LabelSet array; adds a legend strip below",
    )
    p.add_argument("--font", default=None, help="font file for the legend (e.g. a CJK font); default Pillow's own")
    p.set_defaults(func=run)


def _legend(path: Path) -> list[tuple[str, str]]:
    """(name, colour) pairs from an internal-color-map object or a LabelSet JSON array."""
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    labels = LabelSet.from_color_map(data) if isinstance(data, dict) else parse_label_set(text)
    return [(label.name, label.color) for label in labels.labels]


def _mask_bytes(path: Path) -> bytes:
    """The mask file's bytes, refused with a message naming the file when it is not a PNG."""
    from PIL import Image, UnidentifiedImageError

    data = path.read_bytes()
    if data.startswith(_PNG_SIGNATURE):
        return data
    try:
        with Image.open(io.BytesIO(data)) as img:
            found = f"a {img.format} image"
    except (UnidentifiedImageError, OSError):
        found = "not an image"
    raise CommandError(f"not a PNG mask: {path} ({found})")


def run(args: argparse.Namespace) -> int:
    """Render and write the overlay; return the exit code (2 for unusable input)."""
    from gtaudit.overlay.render import render_overlay  # Pillow only when this command runs

    to_stdout = args.output == "-"
    out = Path(args.output)
    fmt = "JPEG" if to_stdout else _FORMATS.get(out.suffix.lower())
    if fmt is None:
        print(f"gtaudit overlay: OUT must end in {', '.join(_FORMATS)}, got {out.name!r}", file=sys.stderr)
        return 2
    try:
        legend = _legend(args.legend) if args.legend else None
        data = render_overlay(
            args.image.read_bytes(),
            _mask_bytes(args.mask),
            opacity=args.opacity,
            outline=args.outline,
            quality=args.quality,
            format=fmt,  # type: ignore[arg-type]
            max_pixels=args.max_pixels,
            legend=legend,
            font=args.font,
        )
    except (OSError, GtauditError, ValueError) as exc:  # JSONDecodeError is a ValueError
        print(f"gtaudit overlay: {exc}", file=sys.stderr)
        return 2
    if to_stdout:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        out.write_bytes(data)
        print(f"wrote {out} ({len(data):,} bytes)", file=sys.stderr)
    return 0
