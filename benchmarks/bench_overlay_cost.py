"""The overlay Lambda's cost per 1,000 images on the path the template uses, S3 requests included,
against the same work batched through a queue.

The template (``OverlayFunction``) is invoked by the data bucket's EventBridge rule once per
consolidated mask: each invocation reads the mask (GET, its ``source-ref`` metadata included), reads
the original (GET), renders on one thread and writes the overlay (PUT), one after the other, at
``MemorySize: 1769`` (one vCPU). ``OVERLAY_THREADS=2`` only helps a chunk of masks, which the
orchestrator sends for catch-up. The billed duration of an event is therefore the S3 round trips
plus the render, not overlapped.

Measured here, on one core (``sched_setaffinity``: one Lambda vCPU), against moto in-process with
an artificial S3 cost per request (``--latency``, 20 ms) plus transfer time (``--mb-per-s``,
100 MB/s each way), the 3968x2976 photo and P mask of ``bench_overlay.py``:

- **event**: ``render_requested_overlays`` on one ``MaskCreatedEvent`` per mask, as the template does;
- **queue, batch B, T threads**: the same masks as an SQS event source would hand them (the rule
  targeting a queue, ``BatchSize`` B): ``render_mask_overlays`` on B masks with T threads, so one
  mask's transfers overlap another's render;
- **render only**: ``render_overlay`` on bytes in memory, the CPU floor of any path.

Each path's cost per 1,000 images = Lambda GB-seconds (elapsed per image x 1.769/1.024 GB) +
Lambda requests + S3 requests (2 GETs and 1 PUT per image on every path) + for the queue, SQS
requests (one SendMessage per image from the rule, one ReceiveMessage and one DeleteMessageBatch
per batch). Elapsed times are wall clock (what Lambda bills), so a loaded machine inflates them;
paths are interleaved so that each sees the same load.

    .venv/bin/python benchmarks/bench_overlay_cost.py [--masks 20] [--batch 10] [--latency 0.02]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench_overlay import make_inputs

# AWS list prices, US East (N. Virginia), as published in February 2026 (Lambda's arm64 price is
# unchanged since arm64 launched in September 2021; S3 Standard's request prices since 2018).
# Lambda: first pricing tier (7.5 billion GB-s a month), no free tier, no Savings Plan.
PRICE_LAMBDA_GB_SECOND_ARM64 = 0.0000133334
PRICE_LAMBDA_REQUEST = 0.20 / 1_000_000
PRICE_S3_GET = 0.0004 / 1000  # GET, SELECT and other reads (S3 Standard)
PRICE_S3_PUT = 0.005 / 1000  # PUT, COPY, POST, LIST (S3 Standard)
PRICE_SQS_REQUEST = 0.40 / 1_000_000  # standard queue, after the first million a month
EARLIER_PER_1000 = 0.0053  # the README's figure before this benchmark (docs/overlay.md said 0.0054)

MEMORY_MB = 1769  # template.yaml, OverlayFunction
BUCKET = "gtaudit-cost-bench"
JOB = "jobs/gtaudit-labeling-r1-20261124t100000-ab12"
EVENT = Path(__file__).resolve().parents[1] / "events" / "overlay-mask-created.json"


class S3Latency:
    """Makes every request of an S3 client cost ``latency`` seconds plus its bytes at ``bytes_per_s``.

    Sleeping releases the GIL, as waiting on a socket does, so other threads render meanwhile.
    """

    def __init__(self, s3: Any, latency: float, bytes_per_s: float) -> None:
        self.latency, self.bytes_per_s = latency, bytes_per_s
        self.requests: dict[str, int] = {}
        s3.meta.events.register("before-send.s3.*", self._send)
        s3.meta.events.register("after-call.s3.GetObject", self._received)

    def wait(self, size: int) -> float:
        """Seconds one request moving ``size`` bytes costs."""
        return self.latency + (size / self.bytes_per_s if self.bytes_per_s else 0.0)

    def _send(self, request: Any, event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        self.requests[operation] = self.requests.get(operation, 0) + 1
        body = request.body
        time.sleep(self.wait(len(body) if isinstance(body, bytes | bytearray) else 0))

    def _received(self, parsed: dict[str, Any], **_: Any) -> None:
        time.sleep(self.wait(int(parsed.get("ContentLength") or 0)) - self.latency)


def one_vcpu_seconds(masks: int, threads: int, phases: list[tuple[str, float]]) -> float:
    """Elapsed seconds of one invocation rendering ``masks`` masks on ``threads`` threads and one vCPU.

    Each mask runs ``phases`` in order: ``("io", s)`` waits s seconds (on S3, beside everything else),
    ``("cpu", s)`` needs s seconds of the one CPU, which the threads computing at that moment share.
    """
    pending = masks - min(threads, masks)
    active = [[0, phases[0][1]] for _ in range(min(threads, masks))]  # [phase, seconds or CPU-seconds left]
    elapsed = 0.0
    while active:
        computing = sum(1 for w in active if phases[int(w[0])][0] == "cpu")
        rate = [1 / computing if phases[int(w[0])][0] == "cpu" else 1.0 for w in active]
        step = min(w[1] / r for w, r in zip(active, rate, strict=True))
        elapsed += step
        for w, r in zip(active, rate, strict=True):
            w[1] -= step * r
        for w in list(active):
            if w[1] > 1e-12:
                continue
            w[0] += 1
            if w[0] < len(phases):
                w[1] = phases[int(w[0])][1]
                continue
            active.remove(w)
            if pending:
                pending -= 1
                active.append([0, phases[0][1]])
    return elapsed


def cost_per_1000(seconds_per_image: float, invocations_per_image: float, sqs_per_image: float) -> dict[str, float]:
    """The cost of 1,000 images, by part, in US dollars."""
    compute = 1000 * seconds_per_image * MEMORY_MB / 1024 * PRICE_LAMBDA_GB_SECOND_ARM64
    requests = 1000 * invocations_per_image * PRICE_LAMBDA_REQUEST
    s3 = 1000 * (2 * PRICE_S3_GET + PRICE_S3_PUT)
    sqs = 1000 * sqs_per_image * PRICE_SQS_REQUEST
    return {"compute": compute, "lambda requests": requests, "S3 requests": s3, "SQS": sqs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--masks", type=int, default=20, help="masks per path and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=10, help="masks per invocation from the queue")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds each S3 request costs")
    parser.add_argument("--mb-per-s", type=float, default=100.0, help="S3 transfer rate; 0: latency only")
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one vCPU, as at MemorySize 1769

    import boto3
    from gtaudit.models import parse_event
    from gtaudit.models.overlay import OverlayEvent
    from gtaudit.overlay.jobs import OverlaySettings, render_mask_overlays, render_requested_overlays
    from gtaudit.overlay.render import render_overlay
    from moto import mock_aws

    image, mask, _ = make_inputs()
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        masks: list[str] = []
        for i in range(args.masks):
            original = f"s3://{BUCKET}/inputs/run/images/IMG_{i:04d}.jpg"
            s3.put_object(Bucket=BUCKET, Key=original.split("/", 3)[3], Body=image)
            key = f"{JOB}/annotations/consolidated-annotation/output/IMG_{i:04d}_2026-11-24T100000.png"
            s3.put_object(Bucket=BUCKET, Key=key, Body=mask, Metadata={"source-ref": quote(original, safe=":/")})
            masks.append(f"s3://{BUCKET}/{key}")
        settings = OverlaySettings(allowed=(BUCKET,))
        latency = S3Latency(s3, args.latency, args.mb_per_s * 1e6)

        def event_path(batch: list[str]) -> None:
            for uri in batch:  # one invocation each
                event = json.loads(EVENT.read_text())  # the rule's event, as sam local invoke sends it
                event["resources"] = [f"arn:aws:s3:::{BUCKET}"]
                event["detail"]["bucket"]["name"] = BUCKET
                event["detail"]["object"]["key"] = uri.split("/", 3)[3]
                report = render_requested_overlays(s3, parse_event(OverlayEvent, event).root, settings, threads=2)
                assert report.count("written") == 1, report.as_dict()

        def queue_path(threads: int) -> Callable[[list[str]], None]:
            def run(batch: list[str]) -> None:
                for start in range(0, len(batch), args.batch):
                    report = render_mask_overlays(s3, batch[start : start + args.batch], settings, threads=threads)
                    assert report.count("written") == len(batch[start : start + args.batch]), report.as_dict()

            return run

        def render_only(batch: list[str]) -> None:
            for _ in batch:
                render_overlay(image, mask)

        paths: dict[str, Callable[[list[str]], None]] = {
            "event (template)": event_path,
            f"queue, batch {args.batch}, 2 threads": queue_path(2),
            f"queue, batch {args.batch}, 3 threads": queue_path(3),
            "render only (no S3)": render_only,
        }
        overlay_bytes = len(render_overlay(image, mask))  # and the warm-up
        measured: dict[str, dict[str, float]] = {name: {"wall": 0.0, "cpu": 0.0} for name in paths}
        for _ in range(args.rounds):  # interleaved: every path sees the same load
            for name, run in paths.items():
                t, cpu = time.perf_counter(), time.process_time()
                run(masks)
                measured[name]["wall"] += (time.perf_counter() - t) / (len(masks) * args.rounds)
                measured[name]["cpu"] += (time.process_time() - cpu) / (len(masks) * args.rounds)
        requests = {op: n // (args.rounds * 3) for op, n in latency.requests.items()}  # per path and round
        waits = [latency.wait(len(mask)), latency.wait(len(image)), latency.wait(overlay_bytes)]

    print(f"3968x2976 JPEG + P mask -> JPEG; S3 modelled as {args.latency * 1e3:.0f} ms a request"
          + (f" + {args.mb_per_s:.0f} MB/s" if args.mb_per_s else "")
          + f": GET mask {waits[0] * 1e3:.0f} ms, GET original {waits[1] * 1e3:.0f} ms, "
          f"PUT overlay {waits[2] * 1e3:.0f} ms")  # fmt: skip
    print(f"S3 requests per path and round of {args.masks} images: {requests}")
    print(f"prices: Lambda arm64 ${PRICE_LAMBDA_GB_SECOND_ARM64}/GB-s + ${PRICE_LAMBDA_REQUEST * 1e6:.2f}/M requests "
          f"at {MEMORY_MB} MB; S3 GET ${PRICE_S3_GET * 1e3}/1,000, PUT ${PRICE_S3_PUT * 1e3}/1,000; "
          f"SQS ${PRICE_SQS_REQUEST * 1e6:.2f}/M")  # fmt: skip
    print("one vCPU = the CPU time measured per image, the S3 waits above, overlapped as the path's threads"
          " allow; wall = elapsed here, on one core of a shared machine\n")  # fmt: skip
    print(f"{'path':<30} {'wall':>6} {'CPU':>6} {'1 vCPU':>7}  {'compute':>8} {'requests':>8} {'S3':>7} "
          f"{'SQS':>7} {'$/1,000':>8}")  # fmt: skip
    event_total = 0.0
    for name, m in measured.items():
        row = f"{name:<30} {m['wall'] * 1e3:6.0f} {m['cpu'] * 1e3:6.0f}"
        if name.startswith("render only"):
            print(f"{row}  (ms per image; the CPU floor of every path)")
            continue
        queued = name.startswith("queue")
        batch, threads = (args.batch, int(name.split(", ")[-1].split()[0])) if queued else (1, 1)
        phases = [("io", waits[0]), ("io", waits[1]), ("cpu", m["cpu"]), ("io", waits[2])]
        seconds = one_vcpu_seconds(batch, threads, phases) / batch
        parts = cost_per_1000(seconds, 1 / batch, 1 + 2 / batch if queued else 0.0)
        total = sum(parts.values())
        event_total = event_total or total
        print(f"{row} {seconds * 1e3:7.0f}  {parts['compute']:8.4f} {parts['lambda requests']:8.4f} "
              f"{parts['S3 requests']:7.4f} {parts['SQS']:7.4f} {total:8.4f}"
              + (f"  {total / event_total:.2f} x the event path" if queued else ""))  # fmt: skip
    print(f"\nthe earlier ${EARLIER_PER_1000}/1,000 counted the render alone; the event path, "
          f"which the template uses, costs {event_total / EARLIER_PER_1000:.2f} x that")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
