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
            "Export the accepted images and masks of a run for training. SOURCE is a folder that "
            "'gtaudit demo' wrote (the newest run's accepted manifest is used), one runs/<run> folder, an "
            "accepted manifest whose s3:// keys are mirrored as files under a folder above it, or in S3 a "
            "run prefix (s3://BUCKET/runs/RUN/) or an accepted manifest (s3://BUCKET/runs/RUN/accepted.manifest), "
            "read with the default AWS credentials and endpoint (AWS_ENDPOINT_URL reaches the local runtime). "
            "Classes are merged by name over the whole run; masks match the images as displayed (EXIF applied). "
            "An image whose original or mask is missing is skipped and listed, and the exit code is then 1."
        ),
    )
    p.add_argument(
        "source",
        metavar="SOURCE",
        help="run folder, runs/<run> folder, accepted.manifest, s3://BUCKET/runs/RUN/ or an s3:// manifest",
    )
    p.add_argument("--format", required=True, metavar="FORMAT", help=f"one of {', '.join(_FORMATS)}")
    p.add_argument("--out", required=True, type=Path, help="the folder to write (new or empty)")
    p.add_argument("--attribute", help="the label attribute name (default: the semantic-segmentation *-ref)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export; return the exit code: 0, or 1 when images were skipped (unusable input raises :class:`CommandError`)."""
    if args.format not in _FORMATS:
        raise CommandError(f"unknown --format {args.format!r} (choose {', '.join(_FORMATS)})")
    from gtaudit_local.export import ExportError, export_dataset

    # SOURCE stays a str: Path("s3://b/k") would fold the scheme's "//" into "s3:/b/k".
    try:
        done = export_dataset(args.source, args.format, args.out, attribute=args.attribute)
    except ExportError as exc:
        raise CommandError(str(exc)) from exc
    classes = len(done.dataset.categories)
    print(f"wrote {done.written} images, {classes} classes as {args.format} to {args.out}", file=sys.stderr)
    if done.skipped:
        print(f"skipped {len(done.skipped)} images whose files are missing:", file=sys.stderr)
        for skipped in done.skipped:
            print(f"  {skipped}", file=sys.stderr)
        return 1
    return 0
