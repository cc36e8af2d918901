"""Read ``template.yaml`` the way CloudFormation + SAM would, for the local runtime.

The local runtime takes all of its wiring from the template: function handlers, code folders,
layers, environment variables (``Globals`` merged in), EventBridge rule patterns and S3 events,
so that a wiring mistake in the template fails locally as it would in AWS. Intrinsic functions
(``!Ref``, ``!GetAtt``, ``!Sub``, ``!If``, ``!Join``, ``!Select``, ``!Split``, ``!Equals``, ``!Not``,
``!And``, ``!Or``, ``!FindInMap``) are resolved against local physical names.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gtaudit_local.aws import ACCOUNT_ID, REGION

_NO_VALUE = object()


class TemplateError(ValueError):
    """The template cannot be read or resolved (unknown reference, bad intrinsic, missing key)."""


@dataclass(frozen=True)
class Intrinsic:
    """An unresolved intrinsic function: ``Fn::Sub`` etc. with its raw argument."""

    name: str
    value: Any


def _make_loader() -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    tags = {
        "Ref": "Ref",
        "GetAtt": "Fn::GetAtt",
        "Sub": "Fn::Sub",
        "If": "Fn::If",
        "Join": "Fn::Join",
        "Select": "Fn::Select",
        "Split": "Fn::Split",
        "Equals": "Fn::Equals",
        "Not": "Fn::Not",
        "And": "Fn::And",
        "Or": "Fn::Or",
        "FindInMap": "Fn::FindInMap",
        "GetAZs": "Fn::GetAZs",
        "Base64": "Fn::Base64",
        "ImportValue": "Fn::ImportValue",
        "Condition": "Condition",
    }

    def make(fn: str) -> Any:
        def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Intrinsic:
            if isinstance(node, yaml.ScalarNode):
                value: Any = loader.construct_scalar(node)
                if fn == "Fn::GetAtt":
                    value = str(value).split(".", 1)
            elif isinstance(node, yaml.SequenceNode):
                value = loader.construct_sequence(node, deep=True)
            else:
                value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
            return Intrinsic(fn, value)

        return construct

    for tag, fn in tags.items():
        Loader.add_constructor(f"!{tag}", make(fn))
    return Loader


_LOADER = _make_loader()


def _long_form(value: Any) -> Any:
    """Turn ``{"Ref": x}`` / ``{"Fn::Sub": x}`` long forms into ``Intrinsic`` too."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref" or key.startswith("Fn::") or (key == "Condition" and isinstance(arg, str)):
                return Intrinsic(key, _long_form(arg))
        return {k: _long_form(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_long_form(v) for v in value]
    if isinstance(value, Intrinsic):
        return Intrinsic(value.name, _long_form(value.value))
    return value


@dataclass(frozen=True)
class EventRule:
    """An EventBridge rule that targets a function (from ``Events`` or an ``AWS::Events::Rule``)."""

    name: str  # a unique local name, e.g. ``OrchestratorFunction-JobStateChange``
    function: str  # the function's logical ID
    pattern: dict[str, Any]
    bus: str = "default"
    input_path: str | None = None
    input: str | None = None  # a constant JSON input instead of the event


@dataclass(frozen=True)
class S3Trigger:
    """A SAM ``Type: S3`` event: object events of one bucket, optionally filtered by key prefix/suffix."""

    name: str
    function: str
    bucket: str  # physical bucket name
    events: tuple[str, ...]
    prefix: str = ""
    suffix: str = ""


@dataclass(frozen=True)
class FunctionSpec:
    """One ``AWS::Serverless::Function`` with ``Globals`` merged and intrinsics resolved."""

    logical_id: str
    name: str  # physical name
    arn: str
    code_dir: Path
    handler: str
    runtime: str
    timeout: int
    memory: int
    environment: dict[str, str]
    layers: tuple[str, ...]  # layer logical IDs (or ARNs)
    layer_dirs: tuple[Path, ...]
    # Asynchronous invocations (EventBridge targets, InvocationType=Event): Lambda retries a failed
    # one MaximumRetryAttempts times (2 when EventInvokeConfig does not say), drops events older than
    # MaximumEventAgeInSeconds, then sends the event to the function's DeadLetterQueue.
    async_retries: int = 2
    async_max_age: int = 21600
    dead_letter_arn: str | None = None


@dataclass
class Stack:
    """A resolved template: physical names, functions, rules and the raw resources."""

    root: Path
    stack_name: str
    parameters: dict[str, str]
    resources: dict[str, dict[str, Any]]
    physical: dict[str, str] = field(default_factory=dict)
    arns: dict[str, str] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    rules: list[EventRule] = field(default_factory=list)
    s3_triggers: list[S3Trigger] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def function(self, ref: str) -> FunctionSpec:
        """A function by logical ID, physical name, ARN, or code folder name (``labeling_pre``)."""
        for spec in self.functions.values():
            if ref in {spec.logical_id, spec.name, spec.arn, spec.code_dir.name}:
                return spec
        raise KeyError(f"no function {ref!r} in the template (have: {', '.join(sorted(self.functions))})")

    def resources_of(self, type_: str) -> dict[str, dict[str, Any]]:
        """The resources of one CloudFormation type, by logical ID."""
        return {k: v for k, v in self.resources.items() if v.get("Type") == type_}


def _physical_name(stack: str, logical_id: str, type_: str, props: Mapping[str, Any]) -> str:
    explicit = {
        "AWS::S3::Bucket": "BucketName",
        "AWS::DynamoDB::Table": "TableName",
        "AWS::Serverless::SimpleTable": "TableName",
        "AWS::SQS::Queue": "QueueName",
        "AWS::Serverless::Function": "FunctionName",
        "AWS::Logs::LogGroup": "LogGroupName",
        "AWS::Events::Rule": "Name",
        "AWS::SNS::Topic": "TopicName",
    }.get(type_)
    if explicit and isinstance(props.get(explicit), str):
        return str(props[explicit])
    if type_ == "AWS::S3::Bucket":
        return re.sub(r"[^a-z0-9-]", "-", f"{stack}-{logical_id}".lower())[:63].strip("-")
    return f"{stack}-{logical_id}"[:64]


def _arn(type_: str, name: str) -> str:
    region, account = REGION, ACCOUNT_ID
    return {
        "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
        "AWS::Serverless::Function": f"arn:aws:lambda:{region}:{account}:function:{name}",
        "AWS::Lambda::Function": f"arn:aws:lambda:{region}:{account}:function:{name}",
        "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{region}:{account}:table/{name}",
        "AWS::Serverless::SimpleTable": f"arn:aws:dynamodb:{region}:{account}:table/{name}",
        "AWS::SQS::Queue": f"arn:aws:sqs:{region}:{account}:{name}",
        "AWS::IAM::Role": f"arn:aws:iam::{account}:role/{name}",
        "AWS::Logs::LogGroup": f"arn:aws:logs:{region}:{account}:log-group:{name}:*",
        "AWS::Events::Rule": f"arn:aws:events:{region}:{account}:rule/{name}",
        "AWS::Serverless::LayerVersion": f"arn:aws:lambda:{region}:{account}:layer:{name}:1",
        "AWS::SNS::Topic": f"arn:aws:sns:{region}:{account}:{name}",
    }.get(type_, f"arn:aws:local:{region}:{account}:{name}")


class _Resolver:
    def __init__(self, stack: Stack, conditions: Mapping[str, Any], mappings: Mapping[str, Any]) -> None:
        self.stack = stack
        self.raw_conditions = conditions
        self.mappings = mappings
        self.conditions: dict[str, bool] = {}

    def pseudo(self, name: str) -> str | None:
        return {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": self.stack.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{self.stack.stack_name}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }.get(name)

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        pseudo = self.pseudo(name)
        if pseudo is not None:
            return pseudo
        if name in self.stack.parameters:
            return self.stack.parameters[name]
        if name in self.stack.physical:
            res = self.stack.resources[name]
            if res.get("Type") in {"AWS::SQS::Queue"}:
                return f"http://sqs.local/{ACCOUNT_ID}/{self.stack.physical[name]}"
            if res.get("Type") in {"AWS::Serverless::LayerVersion", "AWS::SNS::Topic"}:
                return self.stack.arns[name]
            return self.stack.physical[name]
        raise TemplateError(f"!Ref {name}: no such parameter or resource")

    def get_att(self, logical_id: str, attr: str) -> str:
        if logical_id not in self.stack.physical:
            raise TemplateError(f"!GetAtt {logical_id}.{attr}: no such resource")
        name = self.stack.physical[logical_id]
        type_ = self.stack.resources[logical_id].get("Type", "")
        if attr == "Arn":
            return self.stack.arns[logical_id]
        if attr == "StreamArn":
            return f"{self.stack.arns[logical_id]}/stream/local"
        if attr == "QueueName" or attr == "Name":
            return name
        if attr == "QueueUrl":
            return f"http://sqs.local/{ACCOUNT_ID}/{name}"
        if attr in {"DomainName", "RegionalDomainName"} and type_ == "AWS::S3::Bucket":
            return f"{name}.s3.amazonaws.com"
        raise TemplateError(f"!GetAtt {logical_id}.{attr}: attribute not supported locally")

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            if name not in self.raw_conditions:
                raise TemplateError(f"unknown condition {name!r}")
            self.conditions[name] = bool(self.resolve(self.raw_conditions[name]))
        return self.conditions[name]

    def sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self.resolve(v) for k, v in (arg[1] if len(arg) > 1 else {}).items()}
        else:
            text, variables = arg, {}

        def repl(m: re.Match[str]) -> str:
            expr = m.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return str(variables[expr])
            if "." in expr and expr.split(".", 1)[0] in self.stack.physical:
                res, attr = expr.split(".", 1)
                return self.get_att(res, attr)
            return str(self.ref(expr))

        return re.sub(r"\$\{([^}]+)\}", repl, str(text))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Intrinsic):
            fn, arg = value.name, value.value
            if fn == "Ref":
                return self.ref(str(arg))
            if fn == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.get_att(str(self.resolve(parts[0])), str(self.resolve(parts[1])))
            if fn == "Fn::Sub":
                return self.sub(arg)
            if fn == "Fn::If":
                cond, yes, no = arg
                return self.resolve(yes if self.condition(cond) else no)
            if fn == "Fn::Equals":
                a, b = (self.resolve(x) for x in arg)
                return str(a) == str(b)
            if fn == "Fn::Not":
                return not self.resolve(arg[0])
            if fn == "Fn::And":
                return all(self.resolve(x) for x in arg)
            if fn == "Fn::Or":
                return any(self.resolve(x) for x in arg)
            if fn == "Condition":
                return self.condition(str(arg))
            if fn == "Fn::Join":
                sep, items = arg
                return str(sep).join(str(x) for x in self.resolve(items) if x is not _NO_VALUE)
            if fn == "Fn::Select":
                idx, items = arg
                return self.resolve(items)[int(self.resolve(idx))]
            if fn == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(str(sep))
            if fn == "Fn::FindInMap":
                m, k1, k2 = (self.resolve(x) for x in arg)
                return self.mappings[m][k1][k2]
            if fn == "Fn::GetAZs":
                return [f"{REGION}a", f"{REGION}b"]
            raise TemplateError(f"intrinsic {fn} is not supported locally")
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                r = self.resolve(v)
                if r is not _NO_VALUE:
                    out[k] = r
            return out
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not _NO_VALUE]
        return value


def _as_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def load_template(
    path: str | Path, *, stack_name: str = "gtaudit", parameters: Mapping[str, str] | None = None
) -> Stack:
    """Load and resolve a SAM template.

    Parameters
    ----------
    path
        ``template.yaml``; code and layer folders are relative to its directory.
    stack_name
        The local stack name, used in physical names (``<stack>-<LogicalId>``).
    parameters
        Parameter overrides; the rest take their ``Default``.

    Returns
    -------
    Stack

    Raises
    ------
    TemplateError
        Unreadable YAML, a parameter without default or value, an unknown ``!Ref``/``!GetAtt``.
    """
    path = Path(path)
    try:
        raw = _long_form(yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER))
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"cannot read {path}: {exc}") from exc
    params: dict[str, str] = {}
    for name, spec in (raw.get("Parameters") or {}).items():
        if parameters and name in parameters:
            params[name] = str(parameters[name])
        elif "Default" in spec:
            params[name] = _as_str(spec["Default"])
        else:
            raise TemplateError(f"parameter {name} has no default and no value")
        allowed = spec.get("AllowedValues")
        if allowed and params[name] not in [_as_str(a) for a in allowed]:
            raise TemplateError(f"parameter {name}={params[name]!r} is not one of {allowed}")
    resources: dict[str, dict[str, Any]] = raw.get("Resources") or {}
    stack = Stack(root=path.parent.resolve(), stack_name=stack_name, parameters=params, resources=resources)
    resolver = _Resolver(stack, raw.get("Conditions") or {}, raw.get("Mappings") or {})
    # Names first (they may only use literal properties), then everything else can refer to them.
    for lid, res in resources.items():
        props = res.get("Properties") or {}
        literal = {k: v for k, v in props.items() if isinstance(v, str)}
        stack.physical[lid] = _physical_name(stack_name, lid, res.get("Type", ""), literal)
        stack.arns[lid] = _arn(res.get("Type", ""), stack.physical[lid])
    active = {
        lid: res for lid, res in resources.items() if "Condition" not in res or resolver.condition(res["Condition"])
    }
    globals_fn = resolver.resolve((raw.get("Globals") or {}).get("Function") or {})
    for lid, res in active.items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = resolver.resolve(res.get("Properties") or {})
        stack.functions[lid] = _function(stack, lid, props, globals_fn)
        for ev_name, ev in (props.get("Events") or {}).items():
            _event(stack, lid, ev_name, ev, resolver)
    for lid, res in active.items():
        if res.get("Type") == "AWS::Events::Rule":
            props = resolver.resolve(res.get("Properties") or {})
            if not props.get("EventPattern") or str(props.get("State", "ENABLED")) != "ENABLED":
                continue
            for target in props.get("Targets") or []:
                fn = next((f for f in stack.functions.values() if f.arn == target.get("Arn")), None)
                if fn is not None:
                    rule_name = f"{lid}-{target.get('Id', fn.logical_id)}"
                    bus = _bus_name(props.get("EventBusName"))
                    stack.rules.append(
                        EventRule(
                            rule_name,
                            fn.logical_id,
                            props["EventPattern"],
                            bus,
                            target.get("InputPath"),
                            target.get("Input"),
                        )
                    )
    for res in active.values():
        if res.get("Type") not in {"AWS::Serverless::Function", "AWS::Events::Rule"}:
            # Resolved where possible (deploy reads buckets' and tables' properties); an attribute the
            # local runtime cannot give (say, a stream ARN of a missing resource) leaves it raw.
            with contextlib.suppress(TemplateError, KeyError, TypeError, ValueError, IndexError):
                res["Properties"] = resolver.resolve(res.get("Properties") or {})
    stack.outputs = {k: resolver.resolve(v.get("Value")) for k, v in (raw.get("Outputs") or {}).items()}
    return stack


def _bus_name(value: Any) -> str:
    if not value:
        return "default"
    return str(value).rsplit("/", 1)[-1]


def _function(stack: Stack, lid: str, props: dict[str, Any], glob: dict[str, Any]) -> FunctionSpec:
    def pick(key: str, default: Any = None) -> Any:
        return props.get(key, glob.get(key, default))

    env = dict(((glob.get("Environment") or {}).get("Variables")) or {})
    env.update(((props.get("Environment") or {}).get("Variables")) or {})
    # SAM merges list-valued globals (Layers) by appending the function's own after the global ones.
    layers = list(glob.get("Layers") or [])
    layers += [layer for layer in props.get("Layers") or [] if layer not in layers]
    code_uri = pick("CodeUri")
    handler = pick("Handler")
    invoke_config = pick("EventInvokeConfig") or {}
    dlq = pick("DeadLetterQueue")
    if not isinstance(code_uri, str) or not isinstance(handler, str):
        raise TemplateError(f"{lid}: CodeUri and Handler must be set (inline or S3 code cannot run locally)")
    layer_dirs = []
    for arn in layers:
        owner = next((k for k, v in stack.arns.items() if v == arn), None)
        if owner:
            content = (stack.resources[owner].get("Properties") or {}).get("ContentUri")
            if isinstance(content, str):
                layer_dirs.append((stack.root / content).resolve())
    return FunctionSpec(
        logical_id=lid,
        name=stack.physical[lid],
        arn=stack.arns[lid],
        code_dir=(stack.root / code_uri).resolve(),
        handler=handler,
        runtime=str(pick("Runtime", "python3.13")),
        timeout=int(pick("Timeout", 3)),
        memory=int(pick("MemorySize", 128)),
        environment={k: _as_str(v) for k, v in env.items()},
        layers=tuple(str(x) for x in layers),
        layer_dirs=tuple(layer_dirs),
        async_retries=int(invoke_config.get("MaximumRetryAttempts", 2)),
        async_max_age=int(invoke_config.get("MaximumEventAgeInSeconds", 21600)),
        dead_letter_arn=_as_str(dlq["TargetArn"]) if isinstance(dlq, dict) and dlq.get("TargetArn") else None,
    )


def _event(stack: Stack, lid: str, ev_name: str, ev: dict[str, Any], resolver: _Resolver) -> None:
    kind = ev.get("Type")
    props = ev.get("Properties") or {}
    if kind in {"EventBridgeRule", "CloudWatchEvent"}:
        if str(props.get("State", "ENABLED")) == "ENABLED" and props.get("Enabled", True) is not False:
            bus = _bus_name(props.get("EventBusName"))
            stack.rules.append(
                EventRule(f"{lid}-{ev_name}", lid, props["Pattern"], bus, props.get("InputPath"), props.get("Input"))
            )
    elif kind == "S3":
        events = props.get("Events")
        events_t = tuple(events if isinstance(events, list) else [events])
        prefix = suffix = ""
        for rule in ((props.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []:
            if str(rule.get("Name", "")).lower() == "prefix":
                prefix = str(rule.get("Value", ""))
            elif str(rule.get("Name", "")).lower() == "suffix":
                suffix = str(rule.get("Value", ""))
        stack.s3_triggers.append(S3Trigger(f"{lid}-{ev_name}", lid, str(props["Bucket"]), events_t, prefix, suffix))
    # Other event sources (Api, Schedule, SQS, DynamoDB streams) are not wired locally.
