"""``gtaudit start``: upload images if local, write the input manifest, create the first labeling job."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gtaudit.exceptions import GtauditError

from gtaudit_local.commands import existing_folder

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
            "folder uploaded to s3://<bucket>/inputs/<run>/images/. The bucket, table, role, Lambda ARNs and "
            "workteam come from the stack's outputs (--stack, or $GTAUDIT_STACK), else from the orchestrator's "
            "environment variables (DATA_BUCKET, PIPELINE_TABLE, ...), and flags override both. AWS endpoints "
            "follow boto3's settings (AWS_ENDPOINT_URL...), so the same command drives the local runtime."
        ),
    )
    p.add_argument("--images", required=True, help="s3://bucket/prefix/ or a local folder of images")
    p.add_argument("--labels", help="the classes: a JSON array or comma-separated names (default: LABEL_SET)")
    p.add_argument("--stack", default=os.environ.get("GTAUDIT_STACK"), help="the deployed stack to read outputs from")
    p.add_argument("--run-id", help="a fixed run ID (20261124t101500-3f9c) to make a retried start idempotent")
    for field in FLAGS:
        p.add_argument(f"--{field.replace('_', '-')}", dest=field, help=f"override the stack's {field}")
    p.set_defaults(func=run)


def parse_labels(value: str | None) -> list[str] | None:
    """``--labels``: a JSON array (names or {"label"} objects) or comma-separated names."""
    if not value:
        return None
    if value.lstrip().startswith("["):
        from gtaudit.labels import parse_label_set

        return parse_label_set(value).names
    return [v.strip() for v in value.split(",") if v.strip()]


def run(args: argparse.Namespace) -> int:
    """Start the run and print what was created as JSON; exit 2 on a configuration or input error."""
    if not args.images.startswith("s3://"):
        existing_folder(Path(args.images), "--images")
    import boto3
    from gtaudit.pipeline.start import start_run

    try:
        outputs = stack_outputs(args.stack, boto3.client("cloudformation")) if args.stack else {}
        config = config_from_outputs(outputs, **{f: getattr(args, f) for f in FLAGS})
        if not config.bucket or not config.table:
            print("gtaudit start: no bucket/table: give --stack, or --bucket and --table", file=sys.stderr)
            return 2
        started = start_run(
            s3=boto3.client("s3"),
            sagemaker=boto3.client("sagemaker"),
            table=boto3.resource("dynamodb").Table(config.table),
            config=config,
            images=args.images,
            labels=parse_labels(args.labels),
            run_id=args.run_id,
        )
    except (GtauditError, ValueError) as exc:
        print(f"gtaudit start: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(started.as_dict(), indent=1))
    return 0
