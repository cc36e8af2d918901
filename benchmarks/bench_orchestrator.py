"""Benchmark: the orchestrator's labeling-Completed step on a 100,000-line output manifest.

The step streams GT's output manifest, lists the overlays, samples, and writes the audit manifest
and the part files, then creates the audit job. S3 is a disk-backed fake (objects are files in a
temporary folder, read back as streams), so the process's memory is the orchestrator's own and
not a mock's store; DynamoDB is moto in-process; CreateLabelingJob is a fake.

Prints, for 10,000 and 100,000 lines (each in a fresh process): the time, its ratio to the 60 s
budget, the ratio to a floor measured in the same process (json.loads + json.dumps of every line,
the work no implementation can skip), and the peak RSS. Flat memory means the two peaks are close.

    .venv/bin/python benchmarks/bench_orchestrator.py [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BUDGET_SECONDS = 60.0
RUN = "20261124t100000-ab12"
BUCKET = "bench-bucket"
COLOR_MAP = {
    str(i): {"class-name": n, "hex-color": c}
    for i, (n, c) in enumerate(
        [
            ("BACKGROUND", "#ffffff"),
            ("person", "#2ca02c"),
            ("animal", "#1f77b4"),
            ("vehicle", "#ff7f0e"),
            ("building", "#d62728"),
            ("plant", "#9467bd"),
            ("sky", "#8c564b"),
            ("object", "#e377c2"),
        ]
    )
}


class Body:
    """A streaming body over a file, like botocore's StreamingBody."""

    def __init__(self, path: Path) -> None:
        self.fp = path.open("rb")

    def iter_lines(self, keepends: bool = False) -> Iterator[bytes]:
        for line in self.fp:
            yield line if keepends else line.rstrip(b"\r\n")

    def read(self) -> bytes:
        return self.fp.read()

    def close(self) -> None:
        self.fp.close()


# S3 lists every object with its LastModified; the overlay listing compares them.
LISTED_AT = datetime(2026, 11, 24, tzinfo=UTC)


class Paginator:
    def __init__(self, s3: DiskS3) -> None:
        self.s3 = s3

    def paginate(self, Bucket: str, Prefix: str) -> Iterator[dict[str, Any]]:
        if Prefix.endswith("/overlays/"):  # every overlay exists: GT's job root holds N of them
            for start in range(0, self.s3.overlays, 1000):
                keys = [f"{Prefix}{i}.jpg" for i in range(start, min(start + 1000, self.s3.overlays))]
                yield {"Contents": [{"Key": k, "LastModified": LISTED_AT} for k in keys]}
            return
        keys = sorted(k for k in self.s3.keys if k.startswith(Prefix))
        yield {"Contents": [{"Key": k, "LastModified": LISTED_AT} for k in keys]}


class DiskS3:
    """put/get/head/list/upload_fileobj over files on disk."""

    def __init__(self, root: Path, overlays: int) -> None:
        self.root, self.overlays = root, overlays
        self.keys: set[str] = set()

    def _path(self, key: str) -> Path:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def put_object(self, Bucket: str, Key: str, Body: bytes, **kw: Any) -> None:
        self._path(Key).write_bytes(Body)
        self.keys.add(Key)

    def upload_fileobj(self, fp: Any, bucket: str, key: str, ExtraArgs: Any = None) -> None:
        with self._path(key).open("wb") as out:
            while chunk := fp.read(1 << 20):
                out.write(chunk)
        self.keys.add(key)

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Body": Body(self.root / Key)}

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        if Key not in self.keys:
            raise ClientError({"Error": {"Code": "404"}}, "HeadObject")
        return {}

    def get_paginator(self, name: str) -> Paginator:
        return Paginator(self)


class FakeSageMaker:
    def __init__(self, job: str) -> None:
        self.job = job

    def describe_labeling_job(self, LabelingJobName: str) -> dict[str, Any]:
        return {
            "LabelingJobStatus": "Completed",
            "LabelAttributeName": "label-r1",
            "OutputConfig": {"S3OutputPath": f"s3://{BUCKET}/jobs"},
        }

    def create_labeling_job(self, **request: Any) -> None:
        pass


def write_output_manifest(path: Path, n: int, job: str) -> None:
    """GT's output manifest with labeling_post's content, ~900 bytes a line."""
    root = f"s3://{BUCKET}/jobs/{job}"
    with path.open("w") as fp:
        for i in range(n):
            src = f"s3://{BUCKET}/inputs/{RUN}/images/photo-{i:06d}.jpg"
            line = {
                "source-ref": src,
                "object-id": f"photo-{i:06d}-{i:08x}",
                "label-r1": {
                    "status": "consolidated",
                    "mask-ref": f"{root}/annotations/consolidated-annotation/output/{i}_2026-11-24T100000.png",
                    "internal-color-map": COLOR_MAP,
                    "image-size": {"width": 3968, "height": 2976},
                    "workers": ["private.us-east-1.aaaaaaaaaaaaaaaa", "private.us-east-1.bbbbbbbbbbbbbbbb"],
                    "agreement": 0.9,
                    "excluded": [],
                },
                "label-r1-metadata": {
                    "type": "groundtruth/custom",
                    "job-name": job,
                    "human-annotated": "yes",
                    "creation-date": "2026-11-24T10:00:00.000000",
                },
            }
            fp.write(json.dumps(line) + "\n")


def child(n: int) -> dict[str, Any]:
    """Run one size in this (fresh) process; return the numbers."""
    import boto3
    from gtaudit.models import parse_event
    from gtaudit.models.jobs import JobKind, JobStateChangeEvent
    from gtaudit.pipeline.config import PipelineConfig
    from gtaudit.pipeline.context import Clients, Context
    from gtaudit.pipeline.orchestrator import handle_job_event
    from gtaudit.pipeline.state import Job, PipelineState
    from moto import mock_aws

    with tempfile.TemporaryDirectory() as tmp, mock_aws():
        config = PipelineConfig(
            bucket=BUCKET,
            table="pipeline",
            prefix="gtaudit",
            workteam_arn="arn:aws:sagemaker:us-east-1:111122223333:workteam/private-crowd/t",
            role_arn="arn:aws:iam::111122223333:role/r",
            labeling_template="s3://b/t/l.html",
            audit_template="s3://b/t/a.html",
            labeling_pre_arn="arn:aws:lambda:us-east-1:1:function:a",
            labeling_post_arn="arn:aws:lambda:us-east-1:1:function:b",
            audit_pre_arn="arn:aws:lambda:us-east-1:1:function:c",
            audit_post_arn="arn:aws:lambda:us-east-1:1:function:d",
        )
        ddb = boto3.resource("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="pipeline",
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )
        table = ddb.Table("pipeline")
        job = f"gtaudit-labeling-r1-{RUN}"
        s3 = DiskS3(Path(tmp), overlays=n)
        out = Path(tmp) / "jobs" / job / "manifests" / "output" / "output.manifest"
        out.parent.mkdir(parents=True)
        write_output_manifest(out, n, job)
        s3.keys.add(f"jobs/{job}/manifests/output/output.manifest")
        state = PipelineState(table)
        state.create_run(RUN, objects_in=n)
        state.register_job(
            Job(
                RUN,
                job,
                JobKind.LABELING,
                1,
                f"s3://{BUCKET}/runs/{RUN}/manifests/r1/labeling.manifest",
                "label-r1",
                "creating",
                n,
            )
        )
        # The floor: parse and re-serialise every line, nothing else.
        t0 = time.perf_counter()
        with out.open("rb") as fp:
            sink = io.StringIO()
            for raw in fp:
                sink.write(json.dumps(json.loads(raw)))
                sink.seek(0)
                sink.truncate()
        floor = time.perf_counter() - t0

        ctx = Context(config, Clients(s3, FakeSageMaker(job), table), state)
        event = {
            "detail-type": "SageMaker Ground Truth Labeling Job State Change",
            "source": "aws.sagemaker",
            "resources": [f"arn:aws:sagemaker:us-east-1:111122223333:labeling-job/{job}"],
            "detail": {"LabelingJobStatus": "Completed"},
        }
        t0 = time.perf_counter()
        result = handle_job_event(ctx, parse_event(JobStateChangeEvent, event)).as_dict()
        seconds = time.perf_counter() - t0
        assert result["action"] == "audit-created" and result["audit"] == n, result
        audit_lines = sum(1 for _ in (Path(tmp) / f"runs/{RUN}/manifests/r1/audit.manifest").open("rb"))
        assert audit_lines == n
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"lines": n, "seconds": seconds, "floor": floor, "rss_mb": rss_mb}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    results = []
    for n in args.sizes:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(n)], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        print(
            f"{r['lines']:>7} lines: {r['seconds']:6.2f} s = {r['seconds'] / BUDGET_SECONDS:.3f} x the 60 s budget, "
            f"{r['seconds'] / r['floor']:5.1f} x the json floor ({r['floor']:.2f} s), peak RSS {r['rss_mb']:.0f} MB"
        )
    if len(results) >= 2:
        small, big = results[0], results[-1]
        print(
            f"peak RSS {big['lines']:,} vs {small['lines']:,} lines: "
            f"{big['rss_mb']:.0f} MB vs {small['rss_mb']:.0f} MB "
            f"(x{big['rss_mb'] / small['rss_mb']:.2f} for x{big['lines'] / small['lines']:.0f} the lines)"
        )
    worst = max(r["seconds"] for r in results)
    print("PASS" if worst < BUDGET_SECONDS else "FAIL", f"(slowest {worst:.1f} s, budget {BUDGET_SECONDS:.0f} s)")
    return 0 if worst < BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
