"""A small project of test doubles for the Ground Truth emulator: its own template, Lambdas and workers."""

from __future__ import annotations

import json
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gtaudit_local.runtime import LocalRuntime
from gtaudit_local.workers.base import Answer

TEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/testers"
ROLE = "arn:aws:iam::123456789012:role/gt"


class FakeWorker:
    """Answers with the task's object id; returns every task whose object id starts with ``ret``."""

    def __init__(self, n: int) -> None:
        self.worker_id = f"private.us-east-1.worker{n}"
        self.sub = f"00000000-0000-0000-0000-00000000000{n}"
        self.tasks: list[Any] = []
        self.busy = 0
        self.max_busy = 0
        self.pause = 0.02

    def work(self, task: Any, s3: Any) -> Answer:
        self.busy += 1
        self.max_busy = max(self.max_busy, self.busy)
        try:
            time.sleep(self.pause)  # long enough for a second, concurrent task to show
            return self._answer(task)
        finally:
            self.busy -= 1

    def _answer(self, task: Any) -> Answer:
        self.tasks.append(task)
        t0 = datetime(2026, 11, 24, 10, 0, 0, 123000, tzinfo=UTC)
        if task.task_input["objectId"].startswith("ret"):
            return Answer("returned", None, t0, t0 + timedelta(seconds=3), 3.0)
        content = {"answer": {"id": task.task_input["objectId"], "html_has_url": "http://127.0.0.1:" in task.html}}
        if task.task_input["objectId"].startswith("slow"):  # past the job's 600 s task time limit
            return Answer("submitted", content, t0, t0 + timedelta(seconds=601), 590.0)
        return Answer("submitted", content, t0, t0 + timedelta(seconds=42.5), 40.25)


PRE = """
import os
def lambda_handler(event, context):
    line = event["dataObject"]
    oid = line["object-id"]
    assert os.environ["REQUIRED_SETTING"] == "yes"
    if oid.startswith("skip"):
        return {"taskInput": {"objectId": oid, "skipReason": "not an image"}, "isHumanAnnotationRequired": False}
    return {"taskInput": {"objectId": oid, "src": line["source-ref"]}, "isHumanAnnotationRequired": True}
"""
POST = """
import json, boto3
s3 = boto3.client("s3")
def lambda_handler(event, context):
    bucket, key = event["payload"]["s3Uri"][5:].split("/", 1)
    batch = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    attr = event["labelAttributeName"]
    return [{"datasetObjectId": item["datasetObjectId"],
             "consolidatedAnnotation": {"content": {attr: {
                 "workers": [a["workerId"] for a in item["annotations"]],
                 "ids": [json.loads(a["annotationData"]["content"])["answer"]["id"] for a in item["annotations"]]}}}}
            for item in batch]
"""
ON_DONE = """
import json, os, boto3
s3 = boto3.client("s3")
def lambda_handler(event, context):
    job = event["resources"][0].rsplit("/", 1)[1]
    s3.put_object(Bucket=os.environ["BUCKET"], Key=f"events/{job}/" + event["detail"]["LabelingJobStatus"] + ".json",
                  Body=json.dumps(event).encode())
    return {}
"""
TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Setting:
    Type: String
    Default: "yes"
Globals:
  Function:
    Timeout: 30
    Environment:
      Variables:
        REQUIRED_SETTING: !Ref Setting
Resources:
  Data:
    Type: AWS::S3::Bucket
  PreFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: functions/pre/, Handler: %(pre_handler)s}
  PostFunction:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: functions/post/, Handler: app.lambda_handler}
  OnDoneFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/on_done/
      Handler: app.lambda_handler
      Environment:
        Variables:
          BUCKET: !Ref Data
      Events:
        JobDone:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [aws.sagemaker]
              detail-type: [SageMaker Ground Truth Labeling Job State Change]
              detail:
                LabelingJobStatus: [Completed, Failed, Stopped]
"""


def make_project(root: Path, pre_handler: str = "app.lambda_handler") -> Path:
    for name, code in (("pre", PRE), ("post", POST), ("on_done", ON_DONE)):
        (root / "functions" / name).mkdir(parents=True)
        (root / "functions" / name / "app.py").write_text(textwrap.dedent(code))
    (root / "template.yaml").write_text(TEMPLATE % {"pre_handler": pre_handler})
    return root


def job_request(rt: LocalRuntime, name: str, **over: Any) -> dict[str, Any]:
    fn = rt.stack.functions
    req: dict[str, Any] = {
        "LabelingJobName": name,
        "LabelAttributeName": "label-r1",
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": f"s3://{rt.bucket}/in/input.manifest"}}},
        "OutputConfig": {"S3OutputPath": f"s3://{rt.bucket}/out"},
        "RoleArn": ROLE,
        "HumanTaskConfig": {
            "WorkteamArn": TEAM,
            "UiConfig": {"UiTemplateS3Uri": f"s3://{rt.bucket}/ui/t.liquid.html"},
            "PreHumanTaskLambdaArn": fn["PreFunction"].arn,
            "TaskTitle": "Paint",
            "TaskDescription": "Paint every object",
            "NumberOfHumanWorkersPerDataObject": 2,
            "TaskTimeLimitInSeconds": 600,
            "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": fn["PostFunction"].arn},
        },
    }
    for path, value in over.items():
        cur = req
        *parents, last = path.split(".")
        for p in parents:
            cur = cur[p]
        if value is None:
            cur.pop(last, None)
        else:
            cur[last] = value
    return req


def seed(rt: LocalRuntime, ids: list[str]) -> None:
    s3 = rt.client("s3")
    lines = [json.dumps({"source-ref": f"s3://{rt.bucket}/images/{i}.jpg", "object-id": i}) for i in ids]
    s3.put_object(Bucket=rt.bucket, Key="in/input.manifest", Body="\n".join(lines).encode())
    tpl = '<img src="{{ task.input.src | grant_read_access }}"><p>{{ task.input.objectId }}</p>'
    s3.put_object(Bucket=rt.bucket, Key="ui/t.liquid.html", Body=tpl.encode())
    for i in ids:
        s3.put_object(Bucket=rt.bucket, Key=f"images/{i}.jpg", Body=b"jpeg-bytes-" + i.encode())
