"""``gtaudit export``: a run's accepted labels as a training data set (COCO, VOC, masks, YOLO-seg)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gtaudit_local.commands import CommandError

# Listed here too so that building the parser never imports the export package (numpy, Pillow).
_FORMATS = ("coco", "voc", "masks", "yolo-seg")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="write a run's accepted labels as COCO, VOC, plain masks or YOLO-seg",
        description=(
            "Export the accepted images and masks of a local run for training. SOURCE is a folder that "
            "'gtaudit demo' wrote (the newest run's accepted manifest is used), one runs/<run> folder, or an "
            "accepted manifest whose s3:// keys are mirrored as files under a folder above it. Classes are "
            "merged by name over the whole run; masks match the images as displayed (EXIF applied)."
        ),
    )
    p.add_argument("source", type=Path, metavar="SOURCE", help="run folder, runs/<run> folder or accepted.manifest")
    p.add_argument("--format", required=True, metavar="FORMAT", help=f"one of {', '.join(_FORMATS)}")
    p.add_argument("--out", required=True, type=Path, help="the folder to write (new or empty)")
    p.add_argument("--attribute", help="the label attribute name (default: the semantic-segmentation *-ref)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export; return the exit code (unusable input raises :class:`CommandError`)."""
    if args.format not in _FORMATS:
        raise CommandError(f"unknown --format {args.format!r} (choose {', '.join(_FORMATS)})")
    if str(args.source).startswith("s3://"):
        raise CommandError("SOURCE must be local: copy the run first (aws s3 sync s3://<bucket> <folder>)")
    from gtaudit_local.export import ExportError, export_dataset

    try:
        dataset = export_dataset(args.source, args.format, args.out, attribute=args.attribute)
    except ExportError as exc:
        raise CommandError(str(exc)) from exc
    print(
        f"wrote {len(dataset.items)} images, {len(dataset.categories)} classes as {args.format} to {args.out}",
        file=sys.stderr,
    )
    return 0
