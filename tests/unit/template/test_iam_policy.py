"""Least privilege and hardening, read straight from ``template.yaml``.

cfn-lint and checkov (``make scan``) check what they know in general; this test checks what is
particular to this stack: no ``*`` actions, no ``*`` resources for data-plane actions,
``iam:PassRole`` only on the Ground Truth role and only to SageMaker, that role invoking only the
four pre/post Lambdas and trusting SageMaker only for this stack's labeling jobs, every S3 and
DynamoDB grant exactly what each function's code calls (``S3_ACCESS`` and ``DYNAMODB_ACCESS``,
read from the code; a test holds the DynamoDB one to the code's calls), concurrency caps
that cannot starve the Lambdas Ground Truth calls, the KMS key-policy steps of
docs/deploying.md covering every service that uses the key, workflow actions pinned by commit,
and every function, table, queue and topic hardened. Each rule also runs on a small
deliberately bad template, so a rule that cannot fail is caught.
"""

from __future__ import annotations

import ast
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
DEPLOYING = ROOT / "docs" / "deploying.md"
LAYER = ROOT / "layers" / "gtaudit" / "gtaudit"
GT_ROLE = "GroundTruthExecutionRole"
# The four Lambdas Ground Truth calls, by code folder (logical ids are the template author's).
GT_LAMBDA_CODE = {"labeling_pre", "labeling_post", "audit_pre", "audit_post"}
# Functions whose runaway (a loop of events re-triggering them, a job's fan-out) would cost, corrupt
# or starve the Lambdas Ground Truth calls synchronously: a cap, as a parameter that 0 switches off.
CAPPED_CODE = {"orchestrator", "overlay"}
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

# What each function's code does to the data bucket's objects (key patterns; "*" = any key), by code
# folder, and the Ground Truth role by logical id. Reads of "*" are the originals, which are wherever
# the run's images are (`gtaudit start --images s3://<bucket>/<any prefix>`). Writes stay under
# jobs/ (S3OutputPath and what the stack adds beside GT's output), runs/ and templates/.
WORKER_RESPONSES = "jobs/*/annotations/worker-response/*"
SCORES = "jobs/*/annotations/consolidated-annotation/scores/*"
S3_ACCESS: dict[str, dict[str, set[str]]] = {
    # consolidation.read_batch/read_answers (GT's batch and answers), labeling.post.shown_size (the
    # original), gold.load_index and the gold masks (runs/<run>/gold/); labeling.post ->
    # layout.consolidated_mask, layout.scores_file
    "labeling_post": {
        "GetObject": {"*"},
        "PutObject": {"jobs/*/annotations/consolidated-annotation/output/*", SCORES},
    },
    # consolidation.read_batch/read_answers only
    "audit_post": {"GetObject": {"jobs/*"}},
    # overlay.jobs.render_mask_overlay: mask and original in, layout.overlay out
    "overlay": {"GetObject": {"*"}, "PutObject": {"jobs/*/overlays/*"}},
    # pipeline.manifests/step/finish (runs/, GT's output), overlays rendered inline, templates.ensure_templates,
    # pipeline.redo (the consolidation request of a redo from the worker responses)
    "orchestrator": {
        "GetObject": {"*"},
        "PutObject": {
            "runs/*",
            "jobs/*/overlays/*",
            "jobs/*/annotations/consolidated-annotation/consolidation-request/*",
            "templates/*/*",
        },
        "AbortMultipartUpload": {"runs/*"},
    },
    # trace.ingest: the event's response or scores file version, then ManifestIndex (input manifest
    # or output manifest)
    "worktime": {
        "GetObject": {WORKER_RESPONSES, SCORES, "runs/*/manifests/*", "jobs/*/manifests/output/*"},
        "GetObjectVersion": {WORKER_RESPONSES, SCORES},
    },
    # pipeline.templates.on_custom_resource: a HEAD, then templates/<version>/<file> and templates/current.json
    "worker_templates": {"GetObject": {"templates/*"}, "PutObject": {"templates/*"}},
    GT_ROLE: {"GetObject": {"*"}, "PutObject": {"jobs/*"}, "AbortMultipartUpload": {"jobs/*"}},
}
WRITE_ROOTS = ("jobs/", "runs/", "templates/")
# The DynamoDB calls of each function -> the tables (test_dynamodb_access_is_what_the_code_calls
# reads the calls from the code): conditional writes need no ConditionCheckItem; nothing deletes or scans.
DYNAMODB_ACCESS: dict[str, dict[str, set[str]]] = {
    "orchestrator": {a: {"PipelineTable"} for a in ("GetItem", "Query", "PutItem", "UpdateItem")},
    "worktime": {"PutItem": {"TraceTable"}},
}
# Where those calls are made: the module, and the function the handler's path reaches (None: all of it).
DYNAMODB_CALLERS = {"orchestrator": ("pipeline/state.py", None), "worktime": ("trace/store.py", "put_items")}
DYNAMODB_OPS = {
    "get_item": "GetItem",
    "put_item": "PutItem",
    "update_item": "UpdateItem",
    "delete_item": "DeleteItem",
    "query": "Query",
    "scan": "Scan",
    "batch_get_item": "BatchGetItem",
    "batch_write_item": "BatchWriteItem",
    "batch_writer": "BatchWriteItem",
    "transact_get_items": "TransactGetItems",
    "transact_write_items": "TransactWriteItems",
    "execute_statement": "PartiQL (execute_statement)",
}
# What Ground Truth's role trusts SageMaker for: this account's labeling jobs of this stack.
GT_SOURCE_ARN = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:labeling-job/${JobNamePrefix}-*"
# Resource types that encrypt with KmsKeyArn -> what docs/deploying.md must name for its key policy.
KMS_USERS = {
    "AWS::S3::Bucket": "S3",
    "AWS::DynamoDB::Table": "DynamoDB",
    "AWS::SQS::Queue": "SQS",
    "AWS::SNS::Topic": "SNS",
    "AWS::Logs::LogGroup": "logs.REGION.amazonaws.com",
    "AWS::Serverless::Function": "Lambda",
    "AWS::Lambda::Function": "Lambda",
}

Template = dict[str, Any]
Rule = Callable[[Template], list[str]]
Locate = Callable[[Any], str | None]  # a policy Resource -> where it points (key pattern, table), None to skip


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


def sub_text(value: Any) -> str | None:
    """The text of a ``!Sub`` (or a plain string); None for anything else."""
    if isinstance(value, Intrinsic) and value.name == "Fn::Sub":
        value = value.value[0] if isinstance(value.value, list) else value.value
    return value if isinstance(value, str) else None


def principals(t: Template) -> dict[str, str]:
    """Logical id -> the name the access tables use: each function's code folder, and the GT role."""
    found = {lid: name for name, lid in functions_by_code(t).items()}
    if GT_ROLE in (t.get("Resources") or {}):
        found[GT_ROLE] = GT_ROLE
    return found


def granted(t: Template, lid: str, service: str, where: Locate) -> set[tuple[str, str]]:
    """``(action, where(resource))`` for each action of ``service`` that ``lid``'s Allow statements grant."""
    out = set()
    for owner, st in allow_statements(t):
        acts = [a.split(":", 1)[1] for a in actions(st) if a.lower().startswith(f"{service}:")]
        if owner == lid and acts:
            places = [w for w in map(where, as_list(st.get("Resource", []))) if w is not None]
            out |= {(a, w) for a in acts for w in places}
    return out


def compare(lid: str, service: str, got: set[tuple[str, str]], want: dict[str, set[str]]) -> list[str]:
    """What ``lid`` is granted beyond what its code calls, and what its code calls but it lacks."""
    expected = {(a, w) for a, places in want.items() for w in places}
    return [f"{lid}: {service}:{a} on {w} beyond what its code calls" for a, w in sorted(got - expected)] + [
        f"{lid}: lacks {service}:{a} on {w}, which its code calls" for a, w in sorted(expected - got)
    ]


def bucket_keys(resource: Any) -> str | None:
    """The key pattern an ARN grants in the data bucket (``jobs/*``); None for the bucket itself."""
    text = sub_text(resource)
    if text is not None and text.startswith("${DataBucket.Arn}/"):
        return text.removeprefix("${DataBucket.Arn}/")
    if refers_to(resource, "DataBucket"):
        return None
    return f"outside the data bucket: {resource if text is None else text}"


def table_of(resource: Any) -> str:
    """``PipelineTable`` for ``!GetAtt PipelineTable.Arn``, ``PipelineTable/index`` for its indexes."""
    text = sub_text(resource)
    if isinstance(resource, Intrinsic) and resource.name == "Fn::GetAtt":
        return str(as_list(resource.value)[0]).split(".")[0]
    m = re.match(r"\$\{(\w+)\.Arn\}(/index/)?", text or "")
    return m.group(1) + ("/index" if m.group(2) else "") if m else repr(resource)


def policy_templates(res: dict[str, Any], prefix: str) -> list[str]:
    """The SAM policy templates (``S3ReadPolicy``, ...) of a function whose names start with ``prefix``."""
    pols = as_list(props(res).get("Policies") or [])
    return sorted(name for pol in pols if isinstance(pol, dict) for name in pol if name.startswith(prefix))


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


def access_problems(
    t: Template, service: str, sam_prefix: str, expected: dict[str, dict[str, set[str]]], where: Locate
) -> list[str]:
    """Each principal's grants of ``service`` against the table of what its code calls.

    SAM's policy templates of the service (``sam_prefix``: ``S3ReadPolicy``, ``DynamoDBCrudPolicy``...)
    are refused outright: each grants the whole bucket or table, deletes or scans.
    """
    bad = []
    for lid, name in principals(t).items():
        for n in policy_templates(t["Resources"][lid], sam_prefix):
            bad.append(f"{lid}: policy template {n} grants more than the code calls (whole bucket, deletes, scans)")
        bad += compare(lid, service, granted(t, lid, service, where), expected.get(name, {}))
    return bad


def rule_s3_access_is_what_the_code_does(t: Template) -> list[str]:
    bad = access_problems(t, "s3", "S3", S3_ACCESS, bucket_keys)
    for lid, st in allow_statements(t):
        writes = [a for a in actions(st) if re.match(r"s3:(Put|Delete|Abort|Restore)", a, re.IGNORECASE)]
        in_bucket = [r for r in as_list(st.get("Resource", [])) if writes and refers_to(r, "DataBucket")]
        for key in filter(None, map(bucket_keys, in_bucket)):
            if not key.startswith(WRITE_ROOTS):
                bad.append(f"{lid}: {writes} on {key!r}, not anchored under jobs/, runs/ or templates/")
    return bad


def rule_dynamodb_access_is_what_the_code_calls(t: Template) -> list[str]:
    return access_problems(t, "dynamodb", "DynamoDB", DYNAMODB_ACCESS, table_of)


def rule_gt_role_trusts_sagemaker_for_its_jobs_only(t: Template) -> list[str]:
    role = (t.get("Resources") or {}).get(GT_ROLE)
    if role is None:
        return [f"no {GT_ROLE}"]
    trust = as_list((props(role).get("AssumeRolePolicyDocument") or {}).get("Statement", []))
    allows = [st for st in trust if isinstance(st, dict) and st.get("Effect") == "Allow"]
    bad = [] if allows else [f"{GT_ROLE}: no trust statement"]
    for st in allows:
        cond = st.get("Condition") or {}
        if (cond.get("StringEquals") or {}).get("aws:SourceAccount") != Intrinsic("Ref", "AWS::AccountId"):
            bad.append(f"{GT_ROLE}: trust without aws:SourceAccount = AWS::AccountId (confused deputy)")
        arn = sub_text((cond.get("ArnLike") or cond.get("ArnEquals") or {}).get("aws:SourceArn"))
        if arn != GT_SOURCE_ARN:
            bad.append(f"{GT_ROLE}: trust's aws:SourceArn is {arn!r}, not this stack's labeling jobs")
    return bad


def _switchable_cap(cap: Any, t: Template) -> bool:
    """``!If [C, !Ref P, !Ref AWS::NoValue]`` with ``C: !Not [!Equals [!Ref P, 0]]``; P a Number >= 0, default > 0."""
    if not (isinstance(cap, Intrinsic) and cap.name == "Fn::If" and len(cap.value) == 3):
        return False
    cond, then, otherwise = cap.value
    param = then.value if isinstance(then, Intrinsic) and then.name == "Ref" else None
    spec = (t.get("Parameters") or {}).get(param) or {}
    off = Intrinsic("Fn::Not", [Intrinsic("Fn::Equals", [Intrinsic("Ref", param), 0])])
    return (
        otherwise == Intrinsic("Ref", "AWS::NoValue")
        and (t.get("Conditions") or {}).get(cond) == off
        and spec.get("Type") == "Number"
        and spec.get("MinValue") == 0
        and (spec.get("Default") or 0) > 0
    )


def rule_concurrency_caps_spare_ground_truth(t: Template) -> list[str]:
    # Which functions need a cap is functions_hardened's; this one checks how each cap is set.
    bad = []
    code = {lid: name for name, lid in functions_by_code(t).items()}
    for lid, res in resources(t, FUNCTION_TYPES):
        cap = props(res).get("ReservedConcurrentExecutions")
        if cap is None:
            continue
        if code.get(lid) in GT_LAMBDA_CODE:
            bad.append(
                f"{lid}: reserved concurrency on a Lambda Ground Truth calls synchronously (throttles fail tasks)"
            )
        elif not _switchable_cap(cap, t):
            bad.append(
                f"{lid}: ReservedConcurrentExecutions is not a Number parameter (default > 0) that 0 switches off"
            )
    return bad


def kms_needs(t: Template) -> dict[str, str]:
    """What the key-policy steps must name (``KMS_USERS``) -> why: a resource that uses ``KmsKeyArn``."""
    needs = {"Lambda": "Globals use KmsKeyArn"} if refers_to(global_function(t), "KmsKeyArn") else {}
    queues = set()
    for lid, res in resources(t):
        kind = str(res.get("Type"))
        if not kind.startswith("AWS::IAM::") and refers_to(props(res), "KmsKeyArn"):
            needs.setdefault(KMS_USERS.get(kind, f"{kind} (no documented step)"), f"{lid} uses KmsKeyArn")
            if kind == "AWS::SQS::Queue":
                queues.add(lid)
    # EventBridge itself (not a role of ours) delivers undeliverable events to an encrypted queue.
    for lid, res in resources(t):
        for v in walk(props(res)):
            dlq = v.get("DeadLetterConfig") if isinstance(v, dict) else None
            for q in queues:
                if isinstance(dlq, dict) and refers_to(dlq.get("Arn"), q):
                    needs.setdefault("events.amazonaws.com", f"{lid}'s EventBridge rule dead-letters into {q}")
    return needs


def rule_kms_key_policy_steps_cover_its_users(t: Template) -> list[str]:
    _, heading, rest = DEPLOYING.read_text(encoding="utf-8").partition("### A customer-managed KMS key")
    section = heading + rest.split("\n## ", 1)[0]
    return [
        f"docs/deploying.md, 'A customer-managed KMS key': no key-policy step for {need} ({why})"
        for need, why in kms_needs(t).items()
        if need not in section
    ]


RULES: list[Rule] = [
    rule_no_broad_managed_policies,
    rule_no_wildcard_actions,
    rule_no_unscoped_data_plane,
    rule_pass_role_only_gt_role_to_sagemaker,
    rule_gt_role_invokes_only_the_task_lambdas,
    rule_functions_hardened,
    rule_tables_queues_topics_encrypted,
    rule_data_bucket_hardened,
    rule_s3_access_is_what_the_code_does,
    rule_dynamodb_access_is_what_the_code_calls,
    rule_gt_role_trusts_sagemaker_for_its_jobs_only,
    rule_concurrency_caps_spare_ground_truth,
    rule_kms_key_policy_steps_cover_its_users,
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
      ReservedConcurrentExecutions: 10
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
      Policies:
        - Statement:
            - Effect: Allow
              Action: [dynamodb:GetItem, dynamodb:Query, dynamodb:DeleteItem, dynamodb:Scan, dynamodb:BatchWriteItem]
              Resource: !GetAtt PipelineTable.Arn
      Events:
        Done:
          Type: EventBridgeRule
          Properties:
            Pattern: {source: [aws.sagemaker]}
            DeadLetterConfig: {Arn: !GetAtt Dlq.Arn}
  OverlayFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/overlay/
      ReservedConcurrentExecutions: 20
      Policies:
        - Statement:
            - {Effect: Allow, Action: s3:GetObject, Resource: !Sub "${DataBucket.Arn}/*"}
            - {Effect: Allow, Action: s3:PutObject, Resource: !Sub "${DataBucket.Arn}/*/overlays/*"}
  WorktimeFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/worktime/
      Policies:
        - S3ReadPolicy: {BucketName: !Ref DataBucket}
        - DynamoDBCrudPolicy: {TableName: !Ref TraceTable}
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
      AssumeRolePolicyDocument:
        Statement:
          - Effect: Allow
            Principal: {Service: sagemaker.amazonaws.com}
            Action: sts:AssumeRole
            Condition: {ArnLike: {aws:SourceArn: !Sub "arn:${AWS::Partition}:sagemaker:*:*:*"}}
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
  Dlq:
    Type: AWS::SQS::Queue
    Properties: {KmsMasterKeyId: !Ref KmsKeyArn}
  Topic:
    Type: AWS::SNS::Topic
  Stream:
    Type: AWS::Kinesis::Stream
    Properties: {StreamEncryption: {EncryptionType: KMS, KeyId: !Ref KmsKeyArn}}
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
    "s3_access_is_what_the_code_does": [
        "WorktimeFunction: policy template S3ReadPolicy grants more than the code calls",
        "WorktimeFunction: lacks s3:GetObjectVersion on jobs/*/annotations/worker-response/*",
        "OverlayFunction: s3:PutObject on */overlays/* beyond what its code calls",
        "OverlayFunction: lacks s3:PutObject on jobs/*/overlays/*",
        "OverlayFunction: ['s3:PutObject'] on '*/overlays/*', not anchored",
        "LabelingPreFunction: s3:GetObject on outside the data bucket: * beyond",
        "GroundTruthExecutionRole: s3:GetObject on outside the data bucket: arn:aws:s3:::someone-elses-bucket/*",
    ],
    "dynamodb_access_is_what_the_code_calls": [
        "OrchestratorFunction: dynamodb:DeleteItem on PipelineTable beyond",
        "OrchestratorFunction: dynamodb:Scan on PipelineTable beyond",
        "OrchestratorFunction: dynamodb:BatchWriteItem on PipelineTable beyond",
        "OrchestratorFunction: lacks dynamodb:PutItem on PipelineTable",
        "WorktimeFunction: policy template DynamoDBCrudPolicy grants more than the code calls",
        "WorktimeFunction: lacks dynamodb:PutItem on TraceTable",
    ],
    "gt_role_trusts_sagemaker_for_its_jobs_only": ["without aws:SourceAccount", "not this stack's labeling jobs"],
    "concurrency_caps_spare_ground_truth": [
        "LabelingPreFunction: reserved concurrency on a Lambda Ground Truth calls synchronously",
        "OverlayFunction: ReservedConcurrentExecutions is not a Number parameter",
    ],
    "kms_key_policy_steps_cover_its_users": [
        "no key-policy step for AWS::Kinesis::Stream (no documented step) (Stream"
    ],
}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__.removeprefix("rule_"))
def test_rule_catches_a_bad_template(rule: Rule) -> None:
    found = "\n".join(rule(load(BAD)))
    for needle in EXPECTED[rule.__name__.removeprefix("rule_")]:
        assert needle in found, f"{rule.__name__} missed {needle!r}; reported:\n{found}"


# --------------------------------------------------------------- the access tables match the code


def dynamodb_actions_in(path: str, function: str | None = None) -> set[str]:
    """The DynamoDB operations a layer module (or one function of it) names, as IAM actions."""
    tree: ast.AST = ast.parse((LAYER / path).read_text(encoding="utf-8"))
    if function is not None:
        tree = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function)
    return {DYNAMODB_OPS[n.attr] for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in DYNAMODB_OPS}


def imported_from(path: Path, module: str) -> set[str]:
    """The names ``path`` imports from ``module`` (``from module import a, b``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == module for a in n.names}


@pytest.mark.parametrize("name", sorted(DYNAMODB_CALLERS))
def test_dynamodb_access_is_what_the_code_calls(name: str) -> None:
    path, function = DYNAMODB_CALLERS[name]
    assert dynamodb_actions_in(path, function) == set(DYNAMODB_ACCESS[name])


def test_worktime_reaches_the_trace_store_only_through_put_items() -> None:
    # The store's other functions are the report's queries: were worktime to call one, it would
    # need dynamodb:Query, and DYNAMODB_CALLERS would have to say so.
    handler = imported_from(ROOT / "functions" / "worktime" / "app.py", "gtaudit.trace.store")
    store = {
        n for m in ("ingest", "activity") for n in imported_from(LAYER / "trace" / f"{m}.py", "gtaudit.trace.store")
    }
    assert handler == set() and store <= {"WriteResult", "put_items", "source_seq"}


def test_the_kms_rule_sees_every_user_of_the_key(template: Template) -> None:
    # Every service the stack encrypts with the key, and EventBridge for its dead-lettered events,
    # which docs/deploying.md must cover (an empty section would miss all of them).
    expected = {"S3", "DynamoDB", "SQS", "SNS", "logs.REGION.amazonaws.com", "Lambda", "events.amazonaws.com"}
    assert set(kms_needs(template)) == expected


# ------------------------------------------------------------------- workflow actions pinned by commit

WORKFLOWS = ROOT / ".github" / "workflows"
# owner/repo[/path]@<40-hex commit> # v<tag>: immutable, yet readable and updatable by dependabot.
PINNED = re.compile(r"uses:\s*[\w.-]+/[\w./-]+@[0-9a-f]{40}\s+#\s*v\d+(\.\d+)*\s*$")


def unpinned(workflow: str) -> list[str]:
    """The ``uses:`` lines of a workflow not pinned by full commit SHA with the tag beside it."""
    steps = [line.strip() for line in workflow.splitlines() if re.match(r"\s*(-\s*)?uses:", line)]
    return [s for s in steps if not re.search(r"uses:\s*(\./|docker://)", s) and not PINNED.search(s)]


def test_workflow_actions_are_pinned_by_commit_and_kept_updated() -> None:
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    assert files and {f.name: unpinned(f.read_text(encoding="utf-8")) for f in files} == {f.name: [] for f in files}
    dependabot = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    assert "github-actions" in {u.get("package-ecosystem") for u in dependabot["updates"]}


def test_the_pin_check_catches_tags_and_bare_commits() -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    steps = f"- uses: actions/checkout@v4\n- uses: actions/checkout@{sha}\n- uses: actions/checkout@{sha} # v4.2.2\n"
    assert unpinned(steps) == ["- uses: actions/checkout@v4", f"- uses: actions/checkout@{sha}"]
