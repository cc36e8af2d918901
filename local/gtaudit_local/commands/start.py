"""``gtaudit start``: upload images if local, write the input manifest, create the first labeling job.

With ``--from SOURCE`` the run starts at the audit stage instead, from labels that already exist
(a Ground Truth output manifest, a COCO file, a folder of masks: ``gtaudit_local.imports``). It
prints what it created and each refused object with its reason; it exits 0 if at least one object
went on to the audit, 2 if none did (then no run is created).

With ``--gold SOURCE`` (the same three forms, ``gtaudit_local.gold``), a share of the labeling job
(``--gold-share``) is objects whose correct mask is known, to score the labelers, and a share of
the first audit (``--seed-share``) shows the auditors masks with known defects. A gold object that
cannot be used is refused with its reason (on stderr and in the JSON's ``gold_refused``); the run
goes on without it. A gold source that cannot be read at all stops the start (exit 2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gtaudit.exceptions import GtauditError

from gtaudit_local.commands import CommandError, existing_folder

# Stack output -> PipelineConfig field.
OUTPUTS = {
    "DataBucketName": "bucket",
    "PipelineTableName": "table",
    "JobNamePrefix": "prefix",
    "WorkteamArn": "workteam_arn",
    "AuditWorkteamArn": "audit_workteam_arn",
    "GroundTruthRoleArn": "role_arn",
    "LabelingPreFunctionArn": "labeling_pre_arn",
    "LabelingPostFunctionArn": "labeling_post_arn",
    "AuditPreFunctionArn": "audit_pre_arn",
    "AuditPostFunctionArn": "audit_post_arn",
    "NotificationTopicArn": "topic_arn",
    "OverlayFunctionName": "overlay_function",
    "LabelSet": "label_set",
}
FLAGS = (
    "bucket",
    "table",
    "prefix",
    "workteam_arn",
    "audit_workteam_arn",
    "role_arn",
    "labeling_template",
    "audit_template",
    "labeling_pre_arn",
    "labeling_post_arn",
    "audit_pre_arn",
    "audit_post_arn",
)


def config_from_outputs(outputs: Mapping[str, Any], environ: Mapping[str, str] | None = None, **overrides: Any) -> Any:
    """A ``PipelineConfig`` from stack outputs, then the orchestrator's environment variables, then ``overrides``.

    The local runtime passes its resolved template outputs here too.
    """
    from gtaudit.pipeline.config import PipelineConfig

    values = {field: outputs[name] for name, field in OUTPUTS.items() if outputs.get(name)}
    values.update({k: v for k, v in overrides.items() if v})
    return PipelineConfig.from_env(os.environ if environ is None else environ, **values)


def stack_outputs(stack: str, cloudformation: Any) -> dict[str, str]:
    """``{OutputKey: OutputValue}`` of a deployed stack."""
    stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``start`` subcommand."""
    p = subparsers.add_parser(
        "start",
        help="start a run: upload images, write the input manifest, create the first labeling job",
        description=(
            "Start a labeling -> audit -> rework run. --images is an s3:// prefix of existing images, or a local "
            "folder uploaded to s3://<bucket>/inputs/<run>/images/. With --from, start at the audit stage from "
            "existing labels: a Ground Truth output manifest (.manifest/.jsonl), a COCO file (.json) or a folder "
            "of masks beside their images (docs/importing.md). The bucket, table, role, Lambda ARNs and "
            "workteam come from the stack's outputs (--stack, or $GTAUDIT_STACK), else from the orchestrator's "
            "environment variables (DATA_BUCKET, PIPELINE_TABLE, ...), and flags override both. AWS endpoints "
            "follow boto3's settings (AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_DYNAMODB for the local runtime)."
        ),
    )
    p.add_argument("--images", help="s3://bucket/prefix/ or a local folder of images (with --from: where they are)")
    p.add_argument(
        "--from", dest="source", metavar="SOURCE",
        help="audit existing labels: a GT output manifest, a COCO file or a masks folder (local or s3://)",
    )  # fmt: skip
    p.add_argument("--attribute", help="with --from a GT manifest: its label attribute (default: found per line)")
    p.add_argument(
        "--gold", metavar="SOURCE",
        help="images with known-correct masks to score labelers and auditors: a masks folder, a GT manifest "
        "or a COCO file, local or s3:// (docs/importing.md)",
    )  # fmt: skip
    p.add_argument(
        "--gold-share", type=share, default=0.1, metavar="G",
        help="share of the labeling job that is gold (default 0.1)",
    )  # fmt: skip
    p.add_argument(
        "--seed-share", type=share, default=0.1, metavar="S",
        help="share of the first audit that shows a gold mask with a known defect (default 0.1)",
    )  # fmt: skip
    p.add_argument("--labels", help="the classes: a JSON array or comma-separated names (default: LABEL_SET)")
    p.add_argument("--stack", default=os.environ.get("GTAUDIT_STACK"), help="the deployed stack to read outputs from")
    p.add_argument("--run-id", help="a fixed run ID (20261124t101500-3f9c) to make a retried start idempotent")
    for field in FLAGS:
        p.add_argument(f"--{field.replace('_', '-')}", dest=field, help=f"override the stack's {field}")
    p.set_defaults(func=run)


def parse_labels(value: str | None) -> list[str] | None:
    """``--labels``: the names of a ``gtaudit.labels.parse_label_option`` value (the classes' colours
    are the stack's, which the labeling page shows)."""
    if not value:
        return None
    from gtaudit.labels import parse_label_option

    return parse_label_option(value).names


def share(value: str) -> float:
    """``--gold-share``, ``--seed-share``: a number in [0, 1)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0.0 <= number < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return number


def run(args: argparse.Namespace) -> int:
    """Start the run and print what was created as JSON; exit 2 on a configuration or input error."""
    if not args.images and not args.source:
        raise CommandError("give --images (a labeling run) or --from (an audit of existing labels)")
    if args.gold and args.source:
        raise CommandError("--gold scores the labelers of a labeling run: give it with --images, not --from")
    if args.images and not args.images.startswith("s3://"):
        existing_folder(Path(args.images), "--images")
    import boto3
    from gtaudit.pipeline.start import start_run

    from gtaudit_local.gold import GoldRead
    from gtaudit_local.imports import start_from_source

    try:
        outputs = stack_outputs(args.stack, boto3.client("cloudformation")) if args.stack else {}
        config = config_from_outputs(outputs, **{f: getattr(args, f) for f in FLAGS})
        if not config.bucket or not config.table:
            print("gtaudit start: no bucket/table: give --stack, or --bucket and --table", file=sys.stderr)
            return 2
        common: dict[str, Any] = {
            "s3": boto3.client("s3"),
            "sagemaker": boto3.client("sagemaker"),
            "table": boto3.resource("dynamodb").Table(config.table),
            "config": config,
            "labels": parse_labels(args.labels),
            "run_id": args.run_id,
        }
        if args.source:
            lambda_client = boto3.client("lambda")
            audit = start_from_source(
                args.source, images=args.images, attribute=args.attribute, lambda_client=lambda_client, **common
            )
            return report_audit_start(audit)
        gold = read_gold_for(args.gold, config, common) if args.gold else GoldRead()
        started = start_run(
            images=args.images, gold=gold.objects, gold_share=args.gold_share, seed_share=args.seed_share, **common
        )
    except (GtauditError, ValueError) as exc:  # SourceError is a ValueError
        print(f"gtaudit start: {exc}", file=sys.stderr)
        return 2
    result = started.as_dict()
    result["gold_refused"] = [{"name": n, "reason": r} for n, r in gold.refused] + result["gold_refused"]
    print(json.dumps(result, indent=1, ensure_ascii=False))
    for refusal in result["gold_refused"]:
        print(f"gtaudit start: gold refused {refusal['name']}: {refusal['reason']}", file=sys.stderr)
    return 0


def read_gold_for(source: str, config: Any, common: Mapping[str, Any]) -> Any:
    """The gold objects of ``--gold``, read in the run's classes and colours (``GoldRead``)."""
    from gtaudit.pipeline.start_audit import run_label_set

    from gtaudit_local.gold import read_gold

    return read_gold(source, run_label_set(config, common["labels"]), s3=common["s3"])


def report_audit_start(started: Any) -> int:
    """Print an audit-only start (JSON on stdout, each refused object on stderr); 0 if any object went on."""
    print(json.dumps(started.as_dict(), indent=1, ensure_ascii=False))
    for refusal in started.refused:
        print(f"gtaudit start: refused {refusal.name}: {refusal.reason}", file=sys.stderr)
    if started.job_name is None:
        print("gtaudit start: no object could be imported; no run was started", file=sys.stderr)
        return 2
    return 0
