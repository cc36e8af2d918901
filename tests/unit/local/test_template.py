"""template.yaml as the local runtime reads it: intrinsics, Globals, rules, S3 events."""

from __future__ import annotations

from pathlib import Path

import pytest
from gtaudit_local.template import TemplateError, load_template

ROOT = Path(__file__).resolve().parents[3]

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  Lang: {Type: String, Default: en, AllowedValues: [en, ja]}
  Key: {Type: String, Default: ""}
Conditions:
  HasKey: !Not [!Equals [!Ref Key, ""]]
Globals:
  Function:
    Timeout: 30
    Layers: [!Ref Shared]
    Environment:
      Variables:
        SHARED: "1"
        OVERRIDE: global
Resources:
  Shared:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: layers/shared/}
  Extra:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: layers/extra/}
  Data:
    Type: AWS::S3::Bucket
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/fn/
      Handler: app.handler
      Layers: [!Ref Extra]
      Environment:
        Variables:
          OVERRIDE: mine
          BUCKET: !Ref Data
          ARN: !GetAtt Data.Arn
          SUB: !Sub "${AWS::Region}/${Data}/${Data.Arn}/${!Literal}/${Lang}"
          KEY: !If [HasKey, !Ref Key, none]
          JOINED: !Join [",", [a, !Ref Lang]]
          DROPPED: !If [HasKey, x, !Ref AWS::NoValue]
      Events:
        Done:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [aws.sagemaker]
              resources: [{prefix: !Sub "arn:aws:sagemaker:${AWS::Region}:${AWS::AccountId}:labeling-job/x-"}]
        Upload:
          Type: S3
          Properties:
            Bucket: !Ref Data
            Events: s3:ObjectCreated:*
            Filter: {S3Key: {Rules: [{Name: prefix, Value: in/}, {Name: suffix, Value: .manifest}]}}
"""


def test_functions_get_globals_merged_and_intrinsics_resolved(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    stack = load_template(tmp_path / "template.yaml", stack_name="st", parameters={"Lang": "ja"})
    fn = stack.functions["Fn"]
    assert fn.name == "st-Fn" and fn.arn == "arn:aws:lambda:us-east-1:123456789012:function:st-Fn"
    assert fn.handler == "app.handler" and fn.code_dir == (tmp_path / "functions/fn").resolve()
    assert fn.timeout == 30
    env = fn.environment
    assert env["SHARED"] == "1" and env["OVERRIDE"] == "mine"
    assert env["BUCKET"] == "st-data" and env["ARN"] == "arn:aws:s3:::st-data"
    assert env["SUB"] == "us-east-1/st-data/arn:aws:s3:::st-data/${Literal}/ja"
    assert env["KEY"] == "none" and env["JOINED"] == "a,ja" and "DROPPED" not in env
    assert [p.name for p in fn.layer_dirs] == ["shared", "extra"]  # SAM appends the function's layers
    (rule,) = stack.rules
    assert rule.function == "Fn"
    assert rule.pattern["resources"] == [{"prefix": "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/x-"}]
    (s3,) = stack.s3_triggers
    assert (s3.bucket, s3.prefix, s3.suffix, s3.events) == ("st-data", "in/", ".manifest", ("s3:ObjectCreated:*",))


def test_bad_parameters_and_references_are_errors(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    with pytest.raises(TemplateError, match="not one of"):
        load_template(tmp_path / "template.yaml", parameters={"Lang": "fr"})
    (tmp_path / "template.yaml").write_text(TEMPLATE.replace("BUCKET: !Ref Data", "BUCKET: !Ref Nope"))
    with pytest.raises(TemplateError, match="Nope"):
        load_template(tmp_path / "template.yaml")


def test_the_real_template_resolves() -> None:
    stack = load_template(ROOT / "template.yaml")
    assert {"LabelingPreFunction", "LabelingPostFunction"} <= set(stack.functions)
    for fn in stack.functions.values():
        assert (fn.code_dir / "app.py").is_file(), fn.logical_id
        assert fn.handler == "app.lambda_handler"
    assert stack.outputs["DataBucketName"] == "gtaudit-databucket"
