"""Benchmark: the orchestrator's labeling-Completed step on 10,000 and 100,000 output-manifest lines,
against a real S3 API.

The step streams GT's output manifest, checks every object's overlay, samples, writes the audit
manifest and the part files, then creates the audit job. S3 and DynamoDB are moto's server in a
process of its own (``gtaudit_local.aws.MotoServer``), reached over HTTP by boto3 as the Lambda
reaches AWS: every listing is S3's XML, parsed by botocore. So the step's process holds only its
own memory, and its CPU time is its own work (moto's, which real S3 does elsewhere, is not in it).
The job's overlays (one per line, as the overlay Lambda leaves them) are put straight into the
server's store before the clock starts; CreateLabelingJob is a fake.

Prints, for each size (each in a fresh process): the step's elapsed time and its ratio to the 60 s
budget, the step's CPU time and its ratio to a floor measured in the same process (json.loads +
json.dumps of every line, the work no implementation can skip), the S3 requests it made by
operation with the elapsed time spent in them, and the peak RSS. ``--profile`` adds the step's
top functions by cumulative time.

    .venv/bin/python benchmarks/bench_orchestrator.py [--sizes 10000 100000] [--profile] [--baseline HEAD]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import resource as rusage
import subprocess
import sys
import tempfile
import time
import types
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

BUDGET_SECONDS = 60.0
RUN = "20261124t100000-ab12"
BUCKET = "bench-bucket"
TABLE = "pipeline"
STAMP = "2026-11-24T100000"
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


def job_name() -> str:
    return f"gtaudit-labeling-r1-{RUN}"


def image_name(i: int) -> str:
    return f"photo-{i:06d}"


def serve(lines: int) -> None:
    """The moto server process: S3 and DynamoDB, the job's overlays already in place.

    Prints the endpoint, then serves until its standard input closes (the benchmark ended).
    """
    from gtaudit_local.aws import ACCOUNT_ID, REGION, MotoServer
    from moto.s3.models import s3_backends

    server = MotoServer().start()
    backend = s3_backends[ACCOUNT_ID]["aws"]
    backend.create_bucket(BUCKET, REGION)
    for i in range(lines):  # what the overlay Lambda wrote as GT consolidated each object
        backend.put_object(BUCKET, f"jobs/{job_name()}/overlays/{image_name(i)}.jpg", b"jpeg")
    print(server.endpoint, flush=True)
    sys.stdin.read()
    server.stop()


def write_output_manifest(path: Path, n: int) -> None:
    """GT's output manifest with labeling_post's content, ~900 bytes a line."""
    job = job_name()
    root = f"s3://{BUCKET}/jobs/{job}"
    with path.open("w") as fp:
        for i in range(n):
            name = image_name(i)
            line = {
                "source-ref": f"s3://{BUCKET}/inputs/{RUN}/images/{name}.jpg",
                "object-id": f"{name}-{i:08x}",
                "label-r1": {
                    "status": "consolidated",
                    "mask-ref": f"{root}/annotations/consolidated-annotation/output/{name}_{STAMP}.png",
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


class FakeSageMaker:
    def describe_labeling_job(self, LabelingJobName: str) -> dict[str, Any]:
        return {
            "LabelingJobStatus": "Completed",
            "LabelAttributeName": "label-r1",
            "OutputConfig": {"S3OutputPath": f"s3://{BUCKET}/jobs"},
        }

    def create_labeling_job(self, **request: Any) -> None:
        pass


class S3Calls:
    """Counts the S3 requests a client makes, and the elapsed time spent in each operation."""

    def __init__(self, s3: Any) -> None:
        self.count: Counter[str] = Counter()
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self._started: dict[int, float] = {}
        s3.meta.events.register("before-call.s3.*", self._before)
        s3.meta.events.register("after-call.s3.*", self._after)

    def _before(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        self._started[id(context)] = time.perf_counter()

    def _after(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        self.count[model.name] += 1
        self.seconds[model.name] += time.perf_counter() - self._started.pop(id(context), time.perf_counter())


# The overlay check, which --baseline takes from an older revision to compare in one run.
CHECK_MODULES = {
    "gtaudit.overlay.fanout": "layers/gtaudit/gtaudit/overlay/fanout.py",
    "gtaudit.pipeline.overlays": "layers/gtaudit/gtaudit/pipeline/overlays.py",
}


def use_check_of(ref: str) -> None:
    """Import the overlay check's modules as of git revision ``ref`` (before anything imports them)."""
    root = Path(__file__).resolve().parents[1]
    for name, path in CHECK_MODULES.items():
        source = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=root, check=True, capture_output=True).stdout
        module = types.ModuleType(name)
        module.__file__ = f"{ref}:{path}"
        sys.modules[name] = module
        exec(compile(source, module.__file__, "exec"), module.__dict__)


def child(n: int, endpoint: str, profile: bool, baseline: str | None = None) -> dict[str, Any]:
    """Run one size in this (fresh) process against the server at ``endpoint``; return the numbers."""
    if baseline:
        use_check_of(baseline)
    from gtaudit.models import parse_event
    from gtaudit.models.jobs import JobKind, JobStateChangeEvent
    from gtaudit.pipeline.config import PipelineConfig
    from gtaudit.pipeline.context import Clients, Context
    from gtaudit.pipeline.orchestrator import handle_job_event
    from gtaudit.pipeline.state import Job, PipelineState
    from gtaudit_local.aws import client, resource

    config = PipelineConfig(
        bucket=BUCKET,
        table=TABLE,
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
    ddb = resource("dynamodb", endpoint)
    ddb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
    )
    table = ddb.Table(TABLE)
    s3 = client("s3", endpoint)
    job = job_name()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "output.manifest"
        write_output_manifest(out, n)
        s3.upload_file(str(out), BUCKET, f"jobs/{job}/manifests/output/output.manifest")
        state = PipelineState(table)
        state.create_run(RUN, objects_in=n)
        manifest = f"s3://{BUCKET}/runs/{RUN}/manifests/r1/labeling.manifest"
        state.register_job(Job(RUN, job, JobKind.LABELING, 1, manifest, "label-r1", "creating", n))
        # The floor: parse and re-serialise every line, nothing else.
        cpu0 = time.process_time()
        with out.open("rb") as fp:
            sink = io.StringIO()
            for raw in fp:
                sink.write(json.dumps(json.loads(raw)))
                sink.seek(0)
                sink.truncate()
        floor = time.process_time() - cpu0

    calls = S3Calls(s3)
    ctx = Context(config, Clients(s3, FakeSageMaker(), table), state)
    event = {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "account": "111122223333",
        "time": "2026-11-24T12:00:00Z",
        "region": "us-east-1",
        "detail-type": "SageMaker Ground Truth Labeling Job State Change",
        "source": "aws.sagemaker",
        "resources": [f"arn:aws:sagemaker:us-east-1:111122223333:labeling-job/{job}"],
        "detail": {"LabelingJobStatus": "Completed"},
    }
    profiler = cProfile.Profile() if profile else None
    t0, cpu0 = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    result = handle_job_event(ctx, parse_event(JobStateChangeEvent, event)).as_dict()
    if profiler:
        profiler.disable()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    assert result["action"] == "audit-created" and result["audit"] == n, result
    audit = s3.get_object(Bucket=BUCKET, Key=f"runs/{RUN}/manifests/r1/audit.manifest")["Body"]
    assert sum(1 for _ in audit.iter_lines()) == n
    top = ""
    if profiler:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
        top = text.getvalue()
    return {
        "lines": n,
        "seconds": seconds,
        "cpu": cpu,
        "floor": floor,
        "rss_mb": rusage.getrusage(rusage.RUSAGE_SELF).ru_maxrss / 1024,
        "s3": {op: [calls.count[op], round(calls.seconds[op], 3)] for op in sorted(calls.count)},
        "profile": top,
    }


def run_size(n: int, profile: bool, baseline: str | None = None) -> dict[str, Any]:
    """One size: a fresh moto server process and a fresh step process (with ``baseline``'s overlay check)."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        endpoint = server.stdout.readline().strip()
        if not endpoint:
            raise RuntimeError("the moto server did not start")
        cmd = [sys.executable, __file__, "--child", str(n), endpoint] + (["--profile"] if profile else [])
        cmd += ["--baseline", baseline] if baseline else []
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr)
        return dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    finally:
        server.communicate(timeout=60)  # closes its standard input: it stops


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--profile", action="store_true", help="print the step's top functions")
    parser.add_argument("--baseline", metavar="REF", help="also run each size with the overlay check of this revision")
    parser.add_argument("--child", nargs=2, metavar=("LINES", "ENDPOINT"), help=argparse.SUPPRESS)
    parser.add_argument("--serve", type=int, metavar="LINES", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return 0
    if args.child:
        print(json.dumps(child(int(args.child[0]), args.child[1], args.profile, args.baseline)))
        return 0
    results = []
    for n in args.sizes:
        try:
            before = run_size(n, args.profile, args.baseline) if args.baseline else None
            r = run_size(n, args.profile)
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
        if before:
            print(
                f"{n:>7} lines with the overlay check of {args.baseline}: {before['seconds']:6.2f} s, "
                f"CPU {before['cpu']:.2f} s, ListObjectsV2 {before['s3']['ListObjectsV2'][1]:.2f} s, "
                f"peak RSS {before['rss_mb']:.0f} MB"
            )
        results.append(r)
        requests = ", ".join(f"{op} {count} ({secs:.2f} s)" for op, (count, secs) in r["s3"].items())
        print(
            f"{r['lines']:>7} lines: {r['seconds']:6.2f} s = {r['seconds'] / BUDGET_SECONDS:.3f} x the 60 s budget; "
            f"CPU {r['cpu']:.2f} s = {r['cpu'] / r['floor']:.1f} x the json floor ({r['floor']:.2f} s); "
            f"peak RSS {r['rss_mb']:.0f} MB\n         S3 requests: {requests}"
        )
        if r["profile"]:
            print(r["profile"])
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
