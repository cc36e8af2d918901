"""A whole consolidation request of 1,000 objects: time per object and peak memory, streamed or not.

labeling_post reads Ground Truth's request as a stream (one object at a time, ``ijson``) and
consolidates objects on as many threads as the function has vCPUs. This benchmark builds a request
of N objects (3 workers' RGBA masks each, inline as GT sends them) on disk and runs, each in a
child process of its own so that its peak RSS is the consolidation's:

* ``streamed``: ``consolidate_batch`` as shipped (threads = this machine's cores);
* ``streamed, 1 thread``: the same on one thread (``GTAUDIT_CONSOLIDATION_THREADS=1``);
* ``whole (before)``: the request read whole and parsed with ``json.loads``, then the same
  per-object consolidation on one thread: what labeling_post did before.

The S3 client is a stand-in over the request file (masks written to it are counted, not kept), so
the figures are the Lambda's own. Masks default to 1024x768 to keep the request at ~0.2 GB; the
12 MP cost per object is bench_consolidate's.

    .venv/bin/python benchmarks/bench_consolidate_batch.py --objects 1000
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from botocore.exceptions import ClientError
from PIL import Image, ImageDraw, ImageFilter

LABELS = {"building": "#1f77b4", "person": "#ff7f0e", "sky": "#2ca02c"}
WORKERS = 3
JOB = "gtaudit-labeling-r1-20261129t210000-abcd"


def worker_png(seed: int, size: tuple[int, int]) -> bytes:
    """One worker's RGBA mask: the same scene, shifted a little per worker."""
    rng, hand = np.random.default_rng(7), np.random.default_rng(seed)
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    colors = [tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in LABELS.values()]
    w, h = size
    for _ in range(12):
        x, y, r = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(20, w // 6))
        dx, dy = (int(v) for v in hand.integers(-4, 5, size=2))
        draw.ellipse([x + dx - r, y + dy - r, x + dx + r, y + dy + r], fill=(*colors[int(rng.integers(3))], 255))
    img.putalpha(img.getchannel("A").filter(ImageFilter.GaussianBlur(1)))  # a canvas's soft edges
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_request(path: Path, n: int, size: tuple[int, int]) -> None:
    """GT's request file: N objects, each with 3 inline answers."""
    answers = []
    for k in range(WORKERS):
        content = {
            "crowd-semantic-segmentation": {
                "inputImageProperties": {"width": size[0], "height": size[1]},
                "labelMappings": {name: {"color": color} for name, color in LABELS.items()},
                "labeledImage": {"pngImageData": base64.b64encode(worker_png(k, size)).decode()},
            }
        }
        answers.append({"workerId": f"private.us-east-1.w{k}", "annotationData": {"content": json.dumps(content)}})
    with path.open("w") as f:
        f.write("[")
        for i in range(n):
            item = {"datasetObjectId": str(i), "dataObject": {"s3Uri": f"s3://bench/images/img{i:05d}.jpg"}}
            f.write(("," if i else "") + json.dumps({**item, "annotations": answers}))
        f.write("]")


class FileS3:
    """The request from a file, the photos from memory, writes counted (claims kept, to refuse a second)."""

    def __init__(self, request: Path, size: tuple[int, int]) -> None:
        self.request = request
        photo = io.BytesIO()
        Image.new("RGB", size, (120, 130, 140)).save(photo, "JPEG", quality=90)
        self.photo = photo.getvalue()
        self.claims: set[str] = set()
        self.written = 0

    def get_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        if Key.endswith("consolidation-request/iteration-1/2026-11-29_21:00:00.json"):
            return {"Body": self.request.open("rb"), "ContentLength": self.request.stat().st_size}
        if Key.startswith("images/"):
            return {"Body": io.BytesIO(self.photo), "ContentLength": len(self.photo)}
        raise ClientError({"Error": {"Code": "NoSuchKey", "Message": Key}}, "GetObject")

    def put_object(self, *, Bucket: str, Key: str, IfNoneMatch: str | None = None, **_: Any) -> dict[str, Any]:
        if IfNoneMatch == "*":
            if Key in self.claims:
                raise ClientError({"Error": {"Code": "PreconditionFailed", "Message": Key}}, "PutObject")
            self.claims.add(Key)
        self.written += 1
        return {}

    def head_object(self, **_: Any) -> dict[str, Any]:
        return {"Metadata": {}}


def child(mode: str, request: Path, n: int, size: tuple[int, int]) -> dict[str, float]:
    from gtaudit import consolidation
    from gtaudit.labeling.post import consolidate_batch
    from gtaudit.models.groundtruth import ConsolidationItem, PostAnnotationEvent

    event = PostAnnotationEvent.model_validate(
        {
            "version": "2018-10-16",
            "labelingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:labeling-job/{JOB}",
            "labelAttributeName": "label-r1",
            "labelCategories": list(LABELS),
            "payload": {
                "s3Uri": f"s3://bench/jobs/{JOB}/annotations/consolidated-annotation/consolidation-request/"
                "iteration-1/2026-11-29_21:00:00.json"
            },
        }
    )
    s3 = FileS3(request, size)
    if mode == "whole":

        def whole(stream: Any, skipped: list[str]) -> Any:  # the reader before: all of it, then json.loads
            items = json.loads(stream.read())
            stream.close()
            return iter([ConsolidationItem.model_validate(i) for i in items])

        consolidation._items = whole
    t = time.perf_counter()
    result = consolidate_batch(event, s3, LABELS)
    wall = time.perf_counter() - t
    done = sum(o.consolidated for o in result.objects)
    if done != n:
        raise SystemExit(f"{mode}: {done} of {n} consolidated")
    return {"wall": wall, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--size", default="1024x768")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "REQUEST"))
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    assert len(size) == 2
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.objects, size)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        request = Path(tmp, "request.json")
        write_request(request, args.objects, size)
        mb = request.stat().st_size / 2**20
        print(f"request: {args.objects} objects x {WORKERS} workers at {args.size}: {mb:.0f} MB")
        rows = {}
        for label, mode, threads in (
            ("whole (before)", "whole", "1"),
            ("streamed, 1 thread", "stream", "1"),
            (f"streamed, {len(os.sched_getaffinity(0))} threads", "stream", ""),
        ):
            env = {**os.environ, "GTAUDIT_CONSOLIDATION_THREADS": threads} if threads else dict(os.environ)
            out = subprocess.run(
                [sys.executable, __file__, "--objects", str(args.objects), "--size", args.size, "--child", mode,
                 str(request)],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            rows[label] = json.loads(out.stdout.strip().splitlines()[-1])
        base = rows["whole (before)"]
        print(f"{'reader':<24} {'s/object':>9} {'x before':>9} {'peak RSS MB':>12} {'x before':>9}")
        for label, r in rows.items():
            print(f"{label:<24} {r['wall'] / args.objects:9.4f} {r['wall'] / base['wall']:9.2f} "
                  f"{r['rss_mb']:12.0f} {r['rss_mb'] / base['rss_mb']:9.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
