"""Least privilege and hardening, read straight from ``template.yaml``.

cfn-lint and checkov (``make scan``) check what they know in general; this test checks what is
particular to this stack: no ``*`` actions, no ``*`` resources for data-plane actions,
``iam:PassRole`` only on the Ground Truth role and only to SageMaker, that role invoking only the
four pre/post Lambdas, and every function, table, queue and topic hardened. Each rule also runs
on a small deliberately bad template, so a rule that cannot fail is caught.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import support
import yaml
from gtaudit_local.template import _LOADER, Intrinsic, _long_form

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "template.yaml"
GT_ROLE = "GroundTruthExecutionRole"
# The four Lambdas Ground Truth calls, by code folder (logical ids are the template author's).
GT_LAMBDA_CODE = {"labeling_pre", "labeling_post", "audit_pre", "audit_post"}
# Functions whose runaway (a loop of events re-triggering them) would cost or corrupt: a cap.
CAPPED_CODE = {"orchestrator"}
FUNCTION_TYPES = {"AWS::Serverless::Function", "AWS::Lambda::Function"}
ASYNC_EVENT_TYPES = {"EventBridgeRule", "CloudWatchEvent", "S3", "SNS", "Schedule", "ScheduleV2"}
ASYNC_PRINCIPALS = {f"{svc}.amazonaws.com" for svc in ("events", "s3", "sns", "logs", "scheduler", "ses", "iot")}
# Actions that touch data: never on an unscoped resource.
DATA_PLANE = re.compile(
    r"^(s3:(Get|Put|Delete|Restore|Abort|List)\w*"
    r"|dynamodb:(GetItem|PutItem|UpdateItem|DeleteItem|Query|Scan|Batch\w+|TransactGetItems|TransactWriteItems|PartiQL\w+)"
    r"|sqs:(SendMessage|ReceiveMessage|DeleteMessage|ChangeMessageVisibility|PurgeQueue)\w*"
    r"|sns:Publish\w*"
    r"|lambda:Invoke\w*"
    r"|events:PutEvents"
    r"|states:StartExecution"
    r"|kms:(Decrypt|Encrypt|GenerateDataKey\w*|ReEncrypt\w*)"
    r"|iam:PassRole"
    r"|sagemaker:(Create|Stop|Describe|Delete|Update)\w*)$",
    re.IGNORECASE,
)
BROAD_MANAGED = re.compile(r"FullAccess|AdministratorAccess|PowerUserAccess", re.IGNORECASE)
# SAM policy templates broader than any function here needs: S3CrudPolicy also grants
# s3:DeleteObject, PutObjectAcl and PutLifecycleConfiguration (rewriting the bucket's lifecycle).
BROAD_TEMPLATES = {"S3CrudPolicy", "S3FullAccessPolicy"}

Template = dict[str, Any]
Rule = Callable[[Template], list[str]]


def load(text: str) -> Template:
    """A template with CloudFormation's short tags as ``Intrinsic`` values."""
    data: Template = _long_form(yaml.load(text, Loader=_LOADER))
    return data


def resources(t: Template, types: set[str] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    for lid, res in (t.get("Resources") or {}).items():
        if types is None or res.get("Type") in types:
            yield lid, res


def props(res: dict[str, Any]) -> dict[str, Any]:
    p: dict[str, Any] = res.get("Properties") or {}
    return p


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def walk(value: Any) -> Iterator[Any]:
    """Every scalar, dict, list and intrinsic inside ``value``."""
    return support.walk(value, lambda v: v.value if isinstance(v, Intrinsic) else None)


def refers_to(value: Any, lid: str) -> bool:
    """Whether ``value`` names resource ``lid`` (``!Ref``, ``!GetAtt`` or ``${lid...}`` in ``!Sub``)."""
    for v in walk(value):
        if isinstance(v, Intrinsic):
            if v.name == "Ref" and v.value == lid:
                return True
            if v.name == "Fn::GetAtt" and as_list(v.value)[0] == lid:
                return True
            if v.name == "Fn::Sub":
                text = v.value[0] if isinstance(v.value, list) else v.value
                if isinstance(text, str) and re.search(r"\$\{" + re.escape(lid) + r"[.}]", text):
                    return True
    return False


def unscoped(resource: Any) -> bool:
    """``*``, or an ARN whose resource part is only ``*``."""
    if isinstance(resource, Intrinsic) and resource.name == "Fn::Sub":
        resource = resource.value[0] if isinstance(resource.value, list) else resource.value
    if not isinstance(resource, str):
        return False
    return resource == "*" or bool(re.fullmatch(r"arn:[^:]*:[^:]*:[^:]*:[^:]*:\*|arn:[^:]*:s3:::\*", resource))


def statements(t: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every policy statement in the template, identity- and resource-based, with its owner."""
    for lid, res in resources(t):
        for v in walk(props(res)):
            if isinstance(v, dict) and "Statement" in v:
                for st in as_list(v["Statement"]):
                    if isinstance(st, dict):
                        yield lid, st


def allow_statements(t: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    for lid, st in statements(t):
        if st.get("Effect") == "Allow":
            yield lid, st


def actions(st: dict[str, Any]) -> list[str]:
    return [a for a in as_list(st.get("Action", [])) if isinstance(a, str)]


def functions_by_code(t: Template) -> dict[str, str]:
    """Code folder name (``labeling_pre``) -> logical id, for every function."""
    out = {}
    for lid, res in resources(t, FUNCTION_TYPES):
        code = props(res).get("CodeUri")
        if isinstance(code, str):
            out[Path(code.rstrip("/")).name] = lid
    return out


def global_function(t: Template) -> dict[str, Any]:
    g: dict[str, Any] = ((t.get("Globals") or {}).get("Function")) or {}
    return g


# --------------------------------------------------------------------------------------- rules


def rule_no_broad_managed_policies(t: Template) -> list[str]:
    return [
        f"{lid}: broad managed policy {v!r}"
        for lid, res in resources(t)
        for v in walk(props(res))
        if isinstance(v, str) and BROAD_MANAGED.search(v)
    ]


def rule_no_wildcard_actions(t: Template) -> list[str]:
    bad = []
    for lid, st in allow_statements(t):
        if "NotAction" in st:
            bad.append(f"{lid}: Allow with NotAction")
        for a in actions(st):
            if "*" in a:
                bad.append(f"{lid}: wildcard action {a!r}")
    return bad


def rule_no_unscoped_data_plane(t: Template) -> list[str]:
    bad = []
    for lid, st in allow_statements(t):
        if "NotResource" in st:
            bad.append(f"{lid}: Allow with NotResource")
        data = [a for a in actions(st) if DATA_PLANE.match(a) or "*" in a]
        if data and any(unscoped(r) for r in as_list(st.get("Resource", []))):
            bad.append(f"{lid}: {data} on an unscoped resource")
    # SAM policy templates are scoped by their parameters: none may be "*".
    for lid, res in resources(t, FUNCTION_TYPES):
        for pol in as_list(props(res).get("Policies") or []):
            if isinstance(pol, dict) and "Statement" not in pol:
                for name in BROAD_TEMPLATES & set(pol):
                    bad.append(f"{lid}: policy template {name} grants deletes and bucket settings")
                for name, params in pol.items():
                    for v in walk(params):
                        if isinstance(v, str) and "*" in v:
                            bad.append(f"{lid}: policy template {name} with wildcard parameter {v!r}")
    return bad


def rule_pass_role_only_gt_role_to_sagemaker(t: Template) -> list[str]:
    bad = []
    for lid, st in allow_statements(t):
        if not any(a.lower() in {"iam:passrole", "iam:*"} for a in actions(st)):
            continue
        targets = as_list(st.get("Resource", []))
        if not targets or not all(refers_to(r, GT_ROLE) for r in targets):
            bad.append(f"{lid}: iam:PassRole on {targets!r}, not only {GT_ROLE}")
        cond = (st.get("Condition") or {}).get("StringEquals") or {}
        if as_list(cond.get("iam:PassedToService")) != ["sagemaker.amazonaws.com"]:
            bad.append(f"{lid}: iam:PassRole without iam:PassedToService = sagemaker.amazonaws.com")
    return bad


def rule_gt_role_invokes_only_the_task_lambdas(t: Template) -> list[str]:
    role = (t.get("Resources") or {}).get(GT_ROLE)
    if role is None:
        return [f"no {GT_ROLE}"]
    code = functions_by_code(t)
    expected = {lid for name, lid in code.items() if name in GT_LAMBDA_CODE}
    invoked: set[str] = set()
    bad = []
    for v in walk(props(role)):
        if isinstance(v, dict) and "Statement" in v:
            for st in as_list(v["Statement"]):
                if st.get("Effect") != "Allow" or not any(a.lower().startswith("lambda:") for a in actions(st)):
                    continue
                for r in as_list(st.get("Resource", [])):
                    hit = [lid for _, lid in code.items() if refers_to(r, lid)]
                    if not hit:
                        bad.append(f"{GT_ROLE}: lambda action on {r!r}, not one of this stack's functions")
                    invoked.update(hit)
    if invoked - expected:
        bad.append(f"{GT_ROLE}: invokes {sorted(invoked - expected)}, beyond the pre/post Lambdas")
    if expected - invoked:
        bad.append(f"{GT_ROLE}: cannot invoke {sorted(expected - invoked)}")
    for s3 in (st for lid, st in allow_statements(t) if lid == GT_ROLE):
        if any(a.lower().startswith("s3:") for a in actions(s3)):
            for r in as_list(s3.get("Resource", [])):
                if not refers_to(r, "DataBucket"):
                    bad.append(f"{GT_ROLE}: S3 access outside the data bucket: {r!r}")
    return bad


def _async_invoked(t: Template, lid: str, res: dict[str, Any]) -> bool:
    events = props(res).get("Events") or {}
    if any(isinstance(e, dict) and e.get("Type") in ASYNC_EVENT_TYPES for e in events.values()):
        return True
    # Services that invoke Lambda asynchronously when granted (CloudWatch Logs subscriptions, S3, ...).
    for _, perm in resources(t, {"AWS::Lambda::Permission"}):
        pp = props(perm)
        if refers_to(pp.get("FunctionName"), lid) and pp.get("Principal") in ASYNC_PRINCIPALS:
            return True
    for _, rule in resources(t, {"AWS::Events::Rule"}):
        if any(refers_to(target.get("Arn"), lid) for target in as_list(props(rule).get("Targets") or [])):
            return True
    return any(
        refers_to(props(cfg).get("FunctionName"), lid) for _, cfg in resources(t, {"AWS::Lambda::EventInvokeConfig"})
    )


def _has_failure_destination(res: dict[str, Any]) -> bool:
    p = props(res)
    if p.get("DeadLetterQueue") or p.get("DeadLetterConfig"):
        return True
    dest = ((p.get("EventInvokeConfig") or {}).get("DestinationConfig") or {}).get("OnFailure")
    return bool(dest)


def rule_functions_hardened(t: Template) -> list[str]:
    bad = []
    glob = global_function(t)
    code = {lid: name for name, lid in functions_by_code(t).items()}
    log_groups = [props(res) for _, res in resources(t, {"AWS::Logs::LogGroup"})]
    for lid, res in resources(t, FUNCTION_TYPES):
        p = props(res)
        tracing = p.get("Tracing", glob.get("Tracing")) if res["Type"].startswith("AWS::Serverless") else None
        if res["Type"] == "AWS::Lambda::Function":
            tracing = (p.get("TracingConfig") or {}).get("Mode")
        if tracing != "Active":
            bad.append(f"{lid}: X-Ray tracing is not Active")
        groups = [g for g in log_groups if refers_to(g.get("LogGroupName"), lid)]
        if not groups:
            bad.append(f"{lid}: no AWS::Logs::LogGroup named /aws/lambda/<function>")
        elif not all(g.get("RetentionInDays") for g in groups):
            bad.append(f"{lid}: log group without RetentionInDays")
        if _async_invoked(t, lid, res) and not _has_failure_destination(res):
            bad.append(f"{lid}: invoked asynchronously but has no DLQ or on-failure destination")
        if code.get(lid) in CAPPED_CODE and not p.get(
            "ReservedConcurrentExecutions", glob.get("ReservedConcurrentExecutions")
        ):
            bad.append(f"{lid}: no ReservedConcurrentExecutions")
    return bad


def rule_tables_queues_topics_encrypted(t: Template) -> list[str]:
    bad = []
    for lid, _ in resources(t, {"AWS::Serverless::SimpleTable"}):
        bad.append(f"{lid}: SimpleTable has no point-in-time recovery; use AWS::DynamoDB::Table")
    for lid, res in resources(t, {"AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"}):
        p = props(res)
        pitr = p.get("PointInTimeRecoverySpecification") or {}
        if isinstance(pitr, dict) and pitr.get("PointInTimeRecoveryEnabled") is not True:
            bad.append(f"{lid}: point-in-time recovery not enabled")
        sse = p.get("SSESpecification") or {}
        if isinstance(sse, dict) and sse.get("SSEEnabled") is not True:
            bad.append(f"{lid}: SSESpecification.SSEEnabled is not true")
    for lid, res in resources(t, {"AWS::SQS::Queue"}):
        p = props(res)
        if not p.get("KmsMasterKeyId") and p.get("SqsManagedSseEnabled") is not True:
            bad.append(f"{lid}: queue not encrypted")
    for lid, res in resources(t, {"AWS::SNS::Topic"}):
        if not props(res).get("KmsMasterKeyId"):
            bad.append(f"{lid}: topic not encrypted")
    return bad


def rule_data_bucket_hardened(t: Template) -> list[str]:
    bucket = (t.get("Resources") or {}).get("DataBucket")
    if bucket is None:
        return ["no DataBucket"]
    p = props(bucket)
    bad = []
    if not p.get("BucketEncryption"):
        bad.append("DataBucket: no default encryption")
    block = p.get("PublicAccessBlockConfiguration") or {}
    if not all(
        block.get(k) is True
        for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    ):
        bad.append("DataBucket: public access not fully blocked")
    if (p.get("VersioningConfiguration") or {}).get("Status") != "Enabled":
        bad.append("DataBucket: versioning not enabled")
    if not (p.get("LifecycleConfiguration") or {}).get("Rules"):
        bad.append("DataBucket: no lifecycle rules")
    cors = (p.get("CorsConfiguration") or {}).get("CorsRules") or []
    if not any("GET" in r.get("AllowedMethods", []) for r in cors):
        bad.append("DataBucket: no CORS GET rule for Ground Truth's worker portal")
    if any(set(r.get("AllowedMethods", [])) - {"GET", "HEAD"} for r in cors):
        bad.append("DataBucket: CORS allows more than GET/HEAD")
    tls_only = any(
        st.get("Effect") == "Deny"
        and (st.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport") in ("false", False)
        for lid, st in statements(t)
        if refers_to(props((t["Resources"])[lid]).get("Bucket"), "DataBucket")
    )
    if not tls_only:
        bad.append("DataBucket: no bucket policy denying aws:SecureTransport false")
    return bad


RULES: list[Rule] = [
    rule_no_broad_managed_policies,
    rule_no_wildcard_actions,
    rule_no_unscoped_data_plane,
    rule_pass_role_only_gt_role_to_sagemaker,
    rule_gt_role_invokes_only_the_task_lambdas,
    rule_functions_hardened,
    rule_tables_queues_topics_encrypted,
    rule_data_bucket_hardened,
]


@pytest.fixture(scope="module")
def template() -> Template:
    return load(TEMPLATE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__.removeprefix("rule_"))
def test_template_obeys(template: Template, rule: Rule) -> None:
    assert rule(template) == []


def test_template_has_the_resources_the_rules_read(template: Template) -> None:
    # The rules above pass vacuously on an empty template; make sure they had something to read.
    assert len(list(resources(template, FUNCTION_TYPES))) >= 2
    assert len(list(allow_statements(template))) >= 3
    assert {"labeling_pre", "labeling_post"} <= set(functions_by_code(template))


# ------------------------------------------------------------ the rules fail on a bad template

BAD = """
Globals:
  Function:
    Tracing: PassThrough
Resources:
  DataBucket:
    Type: AWS::S3::Bucket
    Properties:
      CorsConfiguration:
        CorsRules:
          - {AllowedMethods: [GET, PUT], AllowedOrigins: ["*"]}
  LabelingPreFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/labeling_pre/
      Policies:
        - AmazonS3FullAccess
        - DynamoDBCrudPolicy: {TableName: "*"}
        - S3CrudPolicy: {BucketName: !Ref DataBucket}
        - Statement:
            - {Effect: Allow, Action: "s3:*", Resource: !Sub "${DataBucket.Arn}/*"}
            - {Effect: Allow, Action: [s3:GetObject], Resource: "*"}
            - {Effect: Allow, Action: [iam:PassRole], Resource: "*"}
  OrchestratorFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/orchestrator/
      Tracing: Active
      Events:
        Done: {Type: EventBridgeRule, Properties: {Pattern: {source: [aws.sagemaker]}}}
  OrchestratorLogGroup:
    Type: AWS::Logs::LogGroup
    Properties:
      LogGroupName: !Sub /aws/lambda/${OrchestratorFunction}
  AuditPreFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/audit_pre/
      Tracing: Active
  AuditPreLogsPermission:
    Type: AWS::Lambda::Permission
    Properties:
      FunctionName: !GetAtt AuditPreFunction.Arn
      Action: lambda:InvokeFunction
      Principal: logs.amazonaws.com
  GroundTruthExecutionRole:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyDocument:
            Statement:
              - {Effect: Allow, Action: lambda:InvokeFunction, Resource: !GetAtt OrchestratorFunction.Arn}
              - {Effect: Allow, Action: s3:GetObject, Resource: arn:aws:s3:::someone-elses-bucket/*}
              - Effect: Allow
                Action: iam:PassRole
                Resource: !GetAtt GroundTruthExecutionRole.Arn
                Condition: {StringEquals: {iam:PassedToService: lambda.amazonaws.com}}
  Table:
    Type: AWS::DynamoDB::Table
    Properties: {}
  Simple:
    Type: AWS::Serverless::SimpleTable
  Queue:
    Type: AWS::SQS::Queue
  Topic:
    Type: AWS::SNS::Topic
"""

# What each rule must report on BAD (substrings of its messages).
EXPECTED: dict[str, list[str]] = {
    "no_broad_managed_policies": ["AmazonS3FullAccess"],
    "no_wildcard_actions": ["'s3:*'"],
    "no_unscoped_data_plane": [
        "['s3:GetObject'] on an unscoped",
        "['iam:PassRole'] on an unscoped",
        "DynamoDBCrudPolicy with wildcard",
        "S3CrudPolicy grants deletes",
    ],
    "pass_role_only_gt_role_to_sagemaker": ["not only GroundTruthExecutionRole", "iam:PassedToService"],
    "gt_role_invokes_only_the_task_lambdas": [
        "beyond the pre/post Lambdas",
        "cannot invoke ['AuditPreFunction', 'LabelingPreFunction']",
        "someone-elses-bucket",
    ],
    "functions_hardened": [
        "LabelingPreFunction: X-Ray",
        "LabelingPreFunction: no AWS::Logs::LogGroup",
        "OrchestratorFunction: log group without RetentionInDays",
        "OrchestratorFunction: invoked asynchronously",
        "OrchestratorFunction: no ReservedConcurrentExecutions",
        "AuditPreFunction: invoked asynchronously",
    ],
    "tables_queues_topics_encrypted": [
        "Table: point-in-time",
        "Table: SSESpecification",
        "Simple: SimpleTable",
        "Queue: queue not encrypted",
        "Topic: topic not encrypted",
    ],
    "data_bucket_hardened": [
        "no default encryption",
        "public access",
        "versioning",
        "lifecycle",
        "more than GET/HEAD",
        "aws:SecureTransport",
    ],
}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__.removeprefix("rule_"))
def test_rule_catches_a_bad_template(rule: Rule) -> None:
    found = "\n".join(rule(load(BAD)))
    for needle in EXPECTED[rule.__name__.removeprefix("rule_")]:
        assert needle in found, f"{rule.__name__} missed {needle!r}; reported:\n{found}"
