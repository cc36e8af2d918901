"""Test doubles of the orchestrator's AWS side: a fake Ground Truth control plane and SNS, and the
pipeline table built from template.yaml.

``FakeSageMaker`` validates each CreateLabelingJob request against botocore's own SageMaker model,
refuses a second job of the same name as Ground Truth does, and answers DescribeLabelingJob with
whatever status a test sets.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import yaml
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters
from support import ROOT

REGION = "us-east-1"
ACCOUNT = "111122223333"
COLOR_MAP = {
    "0": {"class-name": "BACKGROUND", "hex-color": "#ffffff"},
    "1": {"class-name": "person", "hex-color": "#2ca02c"},
}


class FakeSageMaker:
    """CreateLabelingJob / DescribeLabelingJob with GT's naming and uniqueness rules."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.created: list[str] = []
        self.fail_next_create = False
        self.refuse: str | None = None  # a ValidationException message for the next create
        model = boto3.client("sagemaker", region_name=REGION).meta.service_model
        self._shape = model.operation_model("CreateLabelingJob").input_shape

    def create_labeling_job(self, **request: Any) -> dict[str, Any]:
        validate_parameters(request, self._shape)  # raises on a request AWS would refuse client-side
        name = request["LabelingJobName"]
        if self.fail_next_create:
            self.fail_next_create = False
            raise RuntimeError("crash before the job was created")
        if self.refuse:
            raise ClientError({"Error": {"Code": "ValidationException", "Message": self.refuse}}, "CreateLabelingJob")
        if name.lower() in {n.lower() for n in self.jobs}:
            raise ClientError({"Error": {"Code": "ResourceInUse", "Message": "exists"}}, "CreateLabelingJob")
        self.jobs[name] = {**request, "LabelingJobStatus": "InProgress"}
        self.created.append(name)
        return {"LabelingJobArn": arn(name)}

    def describe_labeling_job(self, LabelingJobName: str) -> dict[str, Any]:
        job = self.jobs[LabelingJobName]
        out = {k: job[k] for k in ("LabelingJobName", "LabelAttributeName", "OutputConfig", "LabelingJobStatus")}
        if job.get("FailureReason"):
            out["FailureReason"] = job["FailureReason"]
        return out


class FakeSNS:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def publish(self, **kwargs: Any) -> dict[str, str]:
        self.messages.append({"subject": kwargs["Subject"], **json.loads(kwargs["Message"])})
        return {"MessageId": str(len(self.messages))}


def arn(name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:labeling-job/{name}"


def event(name: str, status: str = "Completed") -> dict[str, Any]:
    return {
        "version": "0",
        "id": "e-1",
        "detail-type": "SageMaker Ground Truth Labeling Job State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2026-11-24T12:26:13Z",
        "region": REGION,
        "resources": [arn(name)],
        "detail": {"LabelingJobStatus": status},
    }


def pipeline_table(ddb: Any) -> Any:
    """The PipelineTable exactly as template.yaml declares its keys."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "template.yaml").read_text(encoding="utf-8"), Loader=Loader)
    props = template["Resources"]["PipelineTable"]["Properties"]
    ddb.create_table(
        TableName="pipeline",
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
    )
    return ddb.Table("pipeline")
