"""Keeping the embedded AWS in the project folder: cost per write, resume time, and the alternatives.

A labeling project of N objects (default 1,000). Per object: one ~200 KB JPEG photo, two
worker-response JSON files of ~50 KB, one ~20 KB PNG mask, one ~60 KB JPEG overlay (5 PUTs), and
5 trace items (``bench_report.generate``: what the worktime function writes), put one by one as
the functions put them. Everything goes through boto3 to a moto server in this process, in a
versioned bucket with EventBridge notifications and the template's TraceTable, as locally.

Measured in one run, each a ratio:

- (a) cost per write: moto alone, moto with the project store (``MotoServer(store=...)``), the
  same with ``fsync=True`` (survives a power loss too; on a sample), and moto with its own
  recorder on (``moto_api/_internal/recorder``: every request appended to a file);
- (b) resume: ``AwsStore.restore`` into a fresh moto after the deploy (goal: under 5 s), and the
  same objects and items put back over HTTP (boto3, 25 items per BatchWriteItem);
- (c) the alternatives' resume: replaying the recorder's file, loading a pickle of moto's S3 and
  DynamoDB backends (and what one snapshot costs: it would be needed after every write to lose
  nothing);
- the disk the project takes per object, against the photo's bytes.

    .venv/bin/python benchmarks/bench_project_store.py [--objects 1000] [--fsync-sample 100]

Exit code 1 if the store's resume misses the 5 s goal or gives back other objects or items.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import pickle
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from bench_report import generate
from gtaudit_local.aws import ACCOUNT_ID, REGION, MotoServer, client
from gtaudit_local.persist import moto_state
from gtaudit_local.persist.store import AwsStore
from moto.moto_api import recorder
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support import table_spec  # noqa: E402  # the template's TraceTable, as the tests build it

GOAL_S = 5.0
BUCKET = "gtaudit-databucket"
TABLE = "gtaudit-TraceTable"
ITEMS_PER_OBJECT = 5


def payloads() -> dict[str, tuple[bytes, str]]:
    """One object's files: ``{suffix: (bytes, content type)}`` at the sizes of a real project."""
    rng = np.random.default_rng(0)
    photo = Image.open(ROOT / "samples" / "images" / "astronaut.jpg").convert("RGB").resize((1000, 1000))
    noisy = np.clip(np.asarray(photo, dtype=np.int16) + rng.normal(0, 4, (1000, 1000, 3)), 0, 255).astype(np.uint8)

    def jpeg(img: Image.Image, quality: int) -> bytes:
        out = io.BytesIO()
        img.save(out, "JPEG", quality=quality)
        return out.getvalue()

    mask = Image.fromarray((np.arange(900 * 900).reshape(900, 900) // 9000 % 4).astype(np.uint8), "P")
    mask_png = io.BytesIO()
    mask.save(mask_png, "PNG")
    answer = {"answers": [{"answerContent": {"crowd-semantic-segmentation": {"labeledImage": {
        "pngImageData": rng.bytes(37_000).hex()[:50_000]}}}, "workerId": "private.us-east-1.x"}]}  # fmt: skip
    return {
        "photo.jpg": (jpeg(Image.fromarray(noisy), 90), "image/jpeg"),
        "r1.json": (json.dumps(answer).encode(), "application/json"),
        "r2.json": (json.dumps(answer).encode(), "application/json"),
        "mask.png": (mask_png.getvalue() + rng.bytes(max(0, 20_000 - len(mask_png.getvalue()))), "image/png"),
        "overlay.jpg": (jpeg(Image.fromarray(noisy).resize((540, 540)), 88), "image/jpeg"),
    }


def deploy(endpoint: str, bucket: str = BUCKET, table: str = TABLE) -> tuple[Any, Any]:
    """A data bucket and a trace table, as ``LocalRuntime.deploy`` makes them."""
    s3, ddb = client("s3", endpoint), client("dynamodb", endpoint)
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    ddb.create_table(TableName=table, **table_spec("TraceTable"))
    return s3, ddb


@dataclass
class Target:
    """One way of running moto, written to in turn with the others so that all see the same machine."""

    name: str
    endpoint: str
    bucket: str
    table: str
    objects: int
    record: bool = False  # moto's recorder on for this target's requests
    put_s: list[float] = field(default_factory=list)  # each PUT's time
    item_s: list[float] = field(default_factory=list)  # each PutItem's time

    def __post_init__(self) -> None:
        self.s3, self.ddb = client("s3", self.endpoint), client("dynamodb", self.endpoint)

    def write(self, i: int, files: dict[str, tuple[bytes, str]], items: list[dict[str, Any]]) -> None:
        """Object ``i``: its files, then its items, each timed."""
        s3, ddb = self.s3, self.ddb
        if self.record:
            recorder.start_recording()
        for suffix, (body, content_type) in files.items():
            t0 = time.perf_counter()
            s3.put_object(Bucket=self.bucket, Key=f"images/{i:05d}/{suffix}", Body=body + i.to_bytes(4),
                          ContentType=content_type, Metadata={"object": str(i)})  # fmt: skip
            self.put_s.append(time.perf_counter() - t0)
        for item in items[i * ITEMS_PER_OBJECT : (i + 1) * ITEMS_PER_OBJECT]:
            t0 = time.perf_counter()
            ddb.put_item(TableName=self.table, Item=item)
            self.item_s.append(time.perf_counter() - t0)
        recorder.stop_recording()

    def line(self, base: Target | None) -> str:
        """Median time per PUT and per PutItem (medians: the machine is shared), with ratios to ``base``."""
        put, item = statistics.median(self.put_s), statistics.median(self.item_s)
        text = f"  {self.name:<24} PUT {put * 1000:.2f} ms"
        if base is not None:
            text += f" ({put / statistics.median(base.put_s):.2f}x)"
        text += f", PutItem {item * 1000:.2f} ms"
        if base is not None:
            text += f" ({item / statistics.median(base.item_s):.2f}x)"
            if self.objects != base.objects:
                text += f"  [first {self.objects} objects]"
        return text


def fill(targets: list[Target], n: int, files: dict[str, tuple[bytes, str]], items: list[dict[str, Any]]) -> None:
    """Write the project to every target, object by object, taking turns in a rotating order."""
    for target in targets:
        if target.record:  # the recording starts empty, with the deploy in it, as a replay needs
            recorder.reset_recording()
            recorder.start_recording()
        deploy(target.endpoint, target.bucket, target.table)
        recorder.stop_recording()
        target.write(n, files, items)  # warm-up (an object more), untimed
        target.put_s, target.item_s = [], []
    for i in range(n):
        turn = targets[i % len(targets) :] + targets[: i % len(targets)]
        for target in turn:
            if i < target.objects:
                target.write(i, files, items)


def contents(bucket: str, table: str) -> tuple[dict[str, tuple[str, int]], int]:
    """What moto holds now: ``{key: (etag, size)}`` and the number of items."""
    found = moto_state.s3_backend(ACCOUNT_ID).buckets[bucket]
    return {k: (v.etag, v.size) for k, v in found.keys.items()}, len(ddb_table(table))


def ddb_table(name: str) -> Any:
    return moto_state.dynamodb_backend(ACCOUNT_ID, REGION).tables[name]


def restore_over_http(store: AwsStore, endpoint: str) -> None:
    """The store's objects and items put back through boto3, as a restore without the backends would."""
    s3, ddb = client("s3", endpoint), client("dynamodb", endpoint)
    for record in store.objects(BUCKET):
        meta = {k[len("x-amz-meta-") :]: v for k, v in record.metadata.items() if k.startswith("x-amz-meta-")}
        with store.object_file(BUCKET, record.key).open("rb") as f:
            s3.put_object(Bucket=BUCKET, Key=record.key, Body=f, ContentType=record.content_type, Metadata=meta)
    batch: list[dict[str, Any]] = []
    for item in store.items(TABLE):
        batch.append({"PutRequest": {"Item": item}})
        if len(batch) == 25:
            ddb.batch_write_item(RequestItems={TABLE: batch})
            batch = []
    if batch:
        ddb.batch_write_item(RequestItems={TABLE: batch})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--fsync-sample", type=int, default=100)
    args = parser.parse_args()
    n = args.objects
    files = payloads()
    items = generate(n * ITEMS_PER_OBJECT)
    photo_bytes = len(files["photo.jpg"][0])
    sizes = ", ".join(f"{k} {len(v[0]) // 1000} KB" for k, v in files.items())
    print(f"project: {n:,} objects ({sizes}), {len(items):,} trace items")
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        return run(n, files, items, photo_bytes, work, args.fsync_sample)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(n: int, files: dict[str, tuple[bytes, str]], items: list[dict[str, Any]], photo_bytes: int,
        work: Path, fsync_sample: int) -> int:  # fmt: skip
    recorder._location = str(work / "recording.jsonl")
    store, fsync_store = AwsStore(work / "project"), AwsStore(work / "fsync", fsync=True)
    with contextlib.ExitStack() as running:
        servers = [running.enter_context(MotoServer(store=s)) for s in (None, store, fsync_store, None)]
        plain, kept, synced, recorded = targets = [
            Target("moto alone", servers[0].endpoint, "plain-bucket", "plain-table", n),
            Target("with the project store", servers[1].endpoint, BUCKET, TABLE, n),
            Target("store with fsync=True", servers[2].endpoint, "fsync-bucket", "fsync-table", fsync_sample),
            Target("moto's recorder on", servers[3].endpoint, "recorded-bucket", "recorded-table", n, record=True),
        ]
        fill(targets, n, files, items)
        expected = {t.name: contents(t.bucket, t.table) for t in targets}
        t0 = time.perf_counter()
        snapshot = pickle.dumps((moto_state.s3_backend(ACCOUNT_ID).buckets[plain.bucket], ddb_table(plain.table)),
                                protocol=pickle.HIGHEST_PROTOCOL)  # fmt: skip
        pickle_dump = time.perf_counter() - t0
    store.close()
    fsync_store.close()
    print(f"\n(a) cost per write, {len(plain.put_s):,} PUTs and {len(plain.item_s):,} PutItems each, taking turns")
    print(plain.line(None))
    for target in (kept, synced, recorded):
        print(target.line(plain))

    print(f"\n(b) resume {n + 1:,} objects and {len(items):,} items into a fresh moto, after the deploy")
    store = AwsStore(work / "project", readonly=True)
    with MotoServer() as server:
        deploy(server.endpoint)
        report = store.restore(server)
        same = contents(BUCKET, TABLE) == expected[kept.name]
    print(f"  AwsStore.restore:       {report.seconds:.2f} s ({report.objects:,} objects, "
          f"{report.object_bytes / 1e6:.0f} MB, {report.items:,} items); "
          f"ratio to the {GOAL_S:.0f} s goal {report.seconds / GOAL_S:.2f} "
          f"({'OK' if report.seconds < GOAL_S else 'OVER'}); same objects and items: {same}")  # fmt: skip
    with MotoServer() as server:
        deploy(server.endpoint)
        t0 = time.perf_counter()
        restore_over_http(store, server.endpoint)
        http = time.perf_counter() - t0
        http_same = _sizes(contents(BUCKET, TABLE)) == _sizes(expected[kept.name])
    print(f"  the same over HTTP:     {http:.2f} s ({http / report.seconds:.1f}x the store's; same bytes and "
          f"items: {http_same}; but new ETags for multipart uploads, new versions, new last-modified)")  # fmt: skip
    store.close()

    print("\n(c) the alternatives' resume")
    with MotoServer() as server:
        t0 = time.perf_counter()
        recorder.replay_recording(target_host=server.endpoint)
        replay = time.perf_counter() - t0
        replay_same = _sizes(contents(recorded.bucket, recorded.table)) == _sizes(expected[recorded.name])
    rec_size = (work / "recording.jsonl").stat().st_size
    print(f"  moto's recorder replay: {replay:.2f} s ({replay / report.seconds:.1f}x the store's); "
          f"{rec_size / (n + 1) / 1000:.0f} KB of recording per object; same bytes, items: {replay_same}")  # fmt: skip
    with MotoServer() as server:
        deploy(server.endpoint, plain.bucket, plain.table)
        t0 = time.perf_counter()
        bucket, table = pickle.loads(snapshot)
        moto_state.s3_backend(ACCOUNT_ID).buckets[plain.bucket] = bucket
        moto_state.dynamodb_backend(ACCOUNT_ID, REGION).tables[plain.table] = table
        unpickle = time.perf_counter() - t0
        pickle_same = contents(plain.bucket, plain.table) == expected[plain.name]
    per_put = statistics.median(plain.put_s)
    print(f"  pickle of moto's data:  load {unpickle:.2f} s ({unpickle / report.seconds:.1f}x the store's), "
          f"{len(snapshot) / (n + 1) / 1000:.0f} KB per object; same: {pickle_same}; but one snapshot takes "
          f"{pickle_dump:.2f} s = {pickle_dump / per_put:.0f} PUTs, and to lose nothing it is needed after "
          f"every write")  # fmt: skip

    project = work / "project"
    disk = sum(p.stat().st_size for p in project.rglob("*") if p.is_file())
    db = sum(p.stat().st_size for p in (project / "state").iterdir())
    print(f"\ndisk: {disk / (n + 1) / 1000:.0f} KB per object, {disk / (n + 1) / photo_bytes:.2f}x the photo's "
          f"{photo_bytes / 1000:.0f} KB (files: {(disk - db) / (n + 1) / 1000:.0f} KB, state/aws.sqlite: "
          f"{db / (n + 1) / 1000:.1f} KB)")  # fmt: skip
    return 0 if same and report.seconds < GOAL_S else 1


def _sizes(found: tuple[dict[str, tuple[str, int]], int]) -> tuple[dict[str, int], int]:
    return {k: size for k, (_etag, size) in found[0].items()}, found[1]


if __name__ == "__main__":
    sys.exit(main())
