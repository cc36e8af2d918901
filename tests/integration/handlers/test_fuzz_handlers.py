"""Fuzz every Lambda's event parsing with hypothesis, against moto.

Each handler gets its sample event from ``events/`` mutated (keys dropped, values replaced by
arbitrary JSON, by S3 URIs inside and outside the job, by presigned URLs and worker identities),
or an arbitrary JSON value instead of an event. Whatever comes in, the handler must:

- return a JSON-serialisable result, or raise a ``GtauditError`` subclass (never ``KeyError``,
  ``TypeError``, pydantic's ``ValidationError``, botocore's errors, ...);
- never show a presigned URL or a worker identity anywhere in the error and its chain (what
  Lambda prints as the stack trace);
- never write to S3 outside the job's prefix that the event names (nor to another bucket).
"""

from __future__ import annotations

import copy
import importlib
import io
import json
import logging
import os
import re
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from gtaudit.exceptions import GtauditError
from gtaudit_local.template import _LOADER
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from support import orchestrator_env, walk

ROOT = Path(__file__).resolve().parents[3]
EVENTS = ROOT / "events"
FUNCTIONS = ROOT / "functions"
BUCKET = "gtaudit-test-data"
OTHER_BUCKET = "gtaudit-fuzz-elsewhere"
REGION = "us-east-1"
# Strings that must never appear in an error: a presigned URL's signature, worker identities.
PRESIGNED_MARKERS = ("X-Amz-Signature", "X-Amz-Credential", "SECRETSIG")
SECRET_MARKERS = ("X-Amz-Signature", "X-Amz-Credential", "SECRETSIG", "secret-worker", "0d1e2f3a-sub")
PRESIGNED = (
    "https://gtaudit-test-data.s3.us-east-1.amazonaws.com/images/x.jpg"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAEXAMPLE%2F20261124&X-Amz-Signature=SECRETSIG"
)
IDENTITIES = ("private.us-east-1.secret-worker", "0d1e2f3a-sub-4b5c-8d9e-0123456789ab")
DECOY_URIS = (
    f"s3://{BUCKET}/images/x.jpg",
    f"s3://{BUCKET}/elsewhere/annotations/consolidated-annotation/output/0_2026-11-24T100000.png",
    f"s3://{OTHER_BUCKET}/jobs/j/annotations/consolidated-annotation/output/0_2026-11-24T100000.png",
    f"s3://{BUCKET}/jobs/../../escape/annotations/consolidated-annotation/output/0_x.png",
    f"s3://{OTHER_BUCKET}/x.json",
    "s3://",
    "s3:///no-bucket.png",
    "s3://UPPER_case/x.png",
    PRESIGNED,
)
# Well-formed URIs of objects that do not exist.
MISSING_URIS = (
    f"s3://{BUCKET}/jobs/missing/annotations/consolidated-annotation/consolidation-request/iteration-1/x.json",
    f"s3://{BUCKET}/jobs/missing/annotations/consolidated-annotation/output/0_2026-11-24T100000.png",
    f"s3://{BUCKET}/images/missing.jpg",
)
S3_WRITES = {
    "PutObject",
    "CopyObject",
    "DeleteObject",
    "DeleteObjects",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "PutObjectTagging",
    "PutObjectAcl",
    "RestoreObject",
}
MAX_EXAMPLES = int(os.environ.get("GTAUDIT_FUZZ_EXAMPLES", "40"))  # raise it for a deeper run


# ------------------------------------------------------------------------------ strategies


def uris_in(value: Any) -> Iterator[str]:
    return (v for v in walk(value) if isinstance(v, str) and v.startswith("s3://"))


def event_object_uris(event: Any) -> list[str]:
    """The object an S3 ``Object Created`` event names, as a URI (EventBridge shape)."""
    try:
        return [f"s3://{event['detail']['bucket']['name']}/{event['detail']['object']['key']}"]
    except (KeyError, TypeError):
        return []


def keys_in(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from keys_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from keys_in(v)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into ``value`` (dict keys and list indexes), the root included."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, (*prefix, i))


def json_values(seed: Any) -> st.SearchStrategy[Any]:
    uris = sorted(set(uris_in(seed)) | set(DECOY_URIS) | set(MISSING_URIS))
    keys = sorted(set(keys_in(seed)))
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**64), max_value=2**64)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=12)
        | st.sampled_from(uris)
        | st.sampled_from(IDENTITIES)
    )
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.sampled_from(keys) | st.text(max_size=6), children, max_size=3)
        ),
        max_leaves=8,
    )


URI_CHOICES = (*DECOY_URIS, *MISSING_URIS)


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


@st.composite
def mutated(draw: st.DrawFn, seed: Any) -> Any:
    """``seed`` with one to three random edits: a key dropped, or a value replaced."""
    event = copy.deepcopy(seed)
    values = json_values(seed)
    keys = sorted(set(keys_in(seed)) | {"outputConfig", "s3Uri", "source-ref", "masks"})
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(list(paths(event))))
        if not path:
            event = draw(values)
            continue
        parent = event
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["delete", "replace", "insert", "uri", "uri"]))
        uri_paths = [
            q for q in paths(event) if q and isinstance(_at(event, q), str) and _at(event, q).startswith("s3://")
        ]
        if action == "uri" and uri_paths:
            # Point an S3 URI field somewhere else: another job, another bucket, a missing object.
            path = draw(st.sampled_from(uri_paths))
            parent = _at(event, path[:-1])
            parent[path[-1]] = draw(st.sampled_from(URI_CHOICES))
            continue
        target = parent[path[-1]]
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "insert" and isinstance(target, dict):
            target[draw(st.sampled_from(keys))] = draw(values)
        else:
            parent[path[-1]] = draw(values)
    return event


def events(seed: Any) -> st.SearchStrategy[Any]:
    return st.one_of(mutated(seed), mutated(seed), json_values(seed))


# ------------------------------------------------------------------------------ the world


def png(size: tuple[int, int] = (4, 4)) -> bytes:
    from PIL import Image

    img = Image.new("P", size, 0)
    img.putpalette([255, 255, 255, 44, 160, 44] + [0] * (256 * 3 - 6))
    img.putpixel((1, 1), 1)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def jpeg(size: tuple[int, int] = (4, 4)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def answer_json(uri: str) -> bytes:
    if "consolidation-request" in uri:
        return json.dumps(
            [
                {
                    "datasetObjectId": "0",
                    "dataObject": {"s3Uri": f"s3://{BUCKET}/images/x.jpg"},
                    "annotations": [
                        {
                            "workerId": IDENTITIES[0],
                            "annotationData": {"content": json.dumps({"approve": {"on": True}})},
                        }
                    ],
                }
            ]
        ).encode()
    if "worker-response" in uri:
        return json.dumps(
            {
                "answers": [
                    {
                        "acceptanceTime": "2026-11-24T10:00:00.000Z",
                        "submissionTime": "2026-11-24T10:01:00.000Z",
                        "timeSpentInSeconds": 60.0,
                        "workerId": IDENTITIES[0],
                        "workerMetadata": {
                            "identityData": {
                                "identityProviderType": "Cognito",
                                "issuer": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_x",
                                "sub": IDENTITIES[1],
                            }
                        },
                        "answerContent": {"approve": {"on": True}},
                    }
                ]
            }
        ).encode()
    return b"{}"


def seed_objects(s3: Any, uris: list[str], extra: dict[str, bytes]) -> None:
    """Put a small plausible object at every URI the sample events name, plus ``extra``."""
    for bucket in (BUCKET, OTHER_BUCKET):
        s3.create_bucket(Bucket=bucket)
    for uri in uris:
        bucket, _, key = uri[5:].partition("/")
        if bucket not in (BUCKET, OTHER_BUCKET) or not key:
            continue
        lower = key.lower()
        if lower.endswith(".png"):
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=png(),
                Metadata={"source-ref": f"s3://{BUCKET}/images/x.jpg", "dataset-object-id": "0"},
            )
        elif lower.endswith((".jpg", ".jpeg")):
            s3.put_object(Bucket=bucket, Key=key, Body=jpeg())
        else:
            s3.put_object(Bucket=bucket, Key=key, Body=answer_json(uri))
    for uri, body in extra.items():
        bucket, _, key = uri[5:].partition("/")
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def job_root_of(uri: Any) -> tuple[str, str] | None:
    """(bucket, ``<...>/<job>/``) of a URI under ``.../annotations/``; None if it is not one."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[5:].partition("/")
    idx = key.find("/annotations/")
    if idx <= 0 or ".." in key.split("/"):
        return None
    return bucket, key[: idx + 1]


def no_writes(event: Any) -> list[tuple[str, str]]:
    return []


def writes_under_payload_job(event: Any) -> list[tuple[str, str]]:
    """Consolidation Lambdas: the job of the request file (``payload.s3Uri``)."""
    uri = (
        event.get("payload", {}).get("s3Uri")
        if isinstance(event, dict) and isinstance(event.get("payload"), dict)
        else None
    )
    root = job_root_of(uri)
    return [root] if root and root[0] == BUCKET else []


def writes_under_mask_jobs(event: Any) -> list[tuple[str, str]]:
    """Overlay: the jobs of the masks the event names."""
    roots = []
    if isinstance(event, dict) and isinstance(event.get("masks"), list):
        roots = [job_root_of(m) for m in event["masks"]]
    elif isinstance(event, dict):
        try:
            roots = [job_root_of(f"s3://{event['detail']['bucket']['name']}/{event['detail']['object']['key']}")]
        except (KeyError, TypeError):
            roots = []
    return [r for r in roots if r and r[0] == BUCKET]


@dataclass
class Spec:
    module: str
    seeds: list[str]
    allowed_writes: Callable[[Any], list[tuple[str, str]]]
    env: dict[str, str] = field(default_factory=dict)
    tables: dict[str, str] = field(default_factory=dict)  # template logical id -> table name
    xfail: str | None = None


SPECS = {
    "labeling_pre": Spec("labeling_pre.app", ["labeling_pre-source-ref", "labeling_pre-rework"], no_writes),
    "labeling_post": Spec(
        "labeling_post.app", ["labeling_post-s3uri", "labeling_post-content"], writes_under_payload_job
    ),
    "audit_pre": Spec("audit_pre.app", ["audit_pre-task"], no_writes),
    "audit_post": Spec("audit_post.app", ["audit_post-batch"], writes_under_payload_job),
    "overlay": Spec("overlay.app", ["overlay-mask-created", "overlay-chunk"], writes_under_mask_jobs),
    "orchestrator": Spec(
        "orchestrator.app",
        ["orchestrator-completed", "orchestrator-failed", "orchestrator-stopped"],
        no_writes,  # a job this stack does not know is ignored: nothing to write
        env=orchestrator_env(BUCKET, "gtaudit-fuzz-pipeline"),
        tables={"PipelineTable": "gtaudit-fuzz-pipeline"},
    ),
    "worktime": Spec(
        "worktime.app",
        ["worktime-labeling", "worktime-audit", "worktime-scores", "worktime-activity"],
        no_writes,
        env={"TRACE_TABLE": "gtaudit-fuzz-trace"},
        tables={"TraceTable": "gtaudit-fuzz-trace"},
    ),
}
ENV = {
    "ALLOWED_BUCKETS": BUCKET,
    "TASK_LANGUAGE": "en",
    "LABEL_SET": '["person", "animal"]',
    "POWERTOOLS_METRICS_NAMESPACE": "gtaudit-test",
    "POWERTOOLS_LOG_LEVEL": "DEBUG",  # every log line is checked for presigned URLs
}


def load_seed(name: str) -> Any:
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


def request_objects() -> dict[str, bytes]:
    """The objects ``events/requests/*.json`` say the sample events point at."""
    out: dict[str, bytes] = {}
    for path in sorted((EVENTS / "requests").glob("*.json")):
        for uri, body in json.loads(path.read_text(encoding="utf-8")).items():
            out[uri] = json.dumps(body).encode()
    return out


def table_spec(logical_id: str) -> dict[str, Any]:
    """CreateTable arguments of a template.yaml table (keys and indexes only), read raw."""
    raw = yaml.load((ROOT / "template.yaml").read_text(encoding="utf-8"), Loader=_LOADER)
    props = raw["Resources"][logical_id]["Properties"]
    spec = {k: props[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes") if k in props}
    return {**spec, "BillingMode": "PAY_PER_REQUEST"}


class LogCapture(logging.Handler):
    """Every log record as text: message, extra fields and exception."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.getMessage()} {record.__dict__!r}"
        if record.exc_info and record.exc_info[1] is not None:
            text += chain_text(record.exc_info[1])
        self.lines.append(text)


def chain_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def s3_clients(module: Any) -> list[Any]:
    return [
        v
        for v in vars(module).values()
        if hasattr(v, "meta")
        and getattr(getattr(v, "meta", None), "service_model", None) is not None
        and v.meta.service_model.service_name == "s3"
    ]


# ------------------------------------------------------------------------------ the test


def fuzz(
    module: Any,
    seeds: list[Any],
    allowed_writes: Callable[[Any], list[tuple[str, str]]],
    context: Any,
    max_examples: int = MAX_EXAMPLES,
) -> None:
    """Run ``module.lambda_handler`` on generated events; fail on any broken rule (see the module doc)."""
    written: list[tuple[str, str, str]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in S3_WRITES:
            written.append((model.name, str(params.get("Bucket")), str(params.get("Key", ""))))

    for client in s3_clients(module):
        client.meta.events.register("before-parameter-build.s3", record)
    logged = LogCapture()
    std_logger = getattr(getattr(module, "logger", None), "_logger", None)
    if isinstance(std_logger, logging.Logger):
        std_logger.addHandler(logged)

    @settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(event=st.one_of(*[events(s) for s in seeds]))
    def check(event: Any) -> None:
        written.clear()
        logged.lines.clear()
        try:
            result = module.lambda_handler(copy.deepcopy(event), context)
        except GtauditError as exc:
            text = chain_text(exc)
            leaked = [m for m in SECRET_MARKERS if m in text]
            assert not leaked, f"{type(exc).__name__} shows {leaked}: {text[-600:]}"
        else:
            json.dumps(result)
        in_logs = [m for m in PRESIGNED_MARKERS if any(m in line for line in logged.lines)]
        assert not in_logs, f"a log line shows a presigned URL ({in_logs})"
        allowed = allowed_writes(event)
        outside = [w for w in written if not any(w[1] == b and w[2].startswith(prefix) for b, prefix in allowed)]
        assert not outside, f"S3 writes outside the job's prefix {allowed}: {outside}"

    check()


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(reason=SPECS[n].xfail or "", strict=False)) if SPECS[n].xfail else n
        for n in sorted(SPECS)
    ],
)
def test_handler_survives_arbitrary_events(name: str, monkeypatch: pytest.MonkeyPatch, lambda_context: Any) -> None:
    spec = SPECS[name]
    if not (FUNCTIONS / name / "app.py").exists():
        pytest.skip(f"functions/{name} does not exist yet")
    for key, value in {**ENV, **spec.env}.items():
        monkeypatch.setenv(key, value)
    seeds = [load_seed(s) for s in spec.seeds if (EVENTS / f"{s}.json").exists()]
    assert seeds, f"no sample events for {name}"

    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        all_uris = sorted({u for s in seeds for u in [*uris_in(s), *event_object_uris(s)]} | set(DECOY_URIS))
        seed_objects(s3, all_uris, request_objects())
        for logical_id, table in spec.tables.items():
            boto3.client("dynamodb", region_name=REGION).create_table(TableName=table, **table_spec(logical_id))
        module = importlib.reload(importlib.import_module(spec.module))
        fuzz(module, seeds, spec.allowed_writes, lambda_context)


# ------------------------------------------------------------ the harness catches bad handlers

SEED = {
    "payload": {"s3Uri": f"s3://{BUCKET}/jobs/j/annotations/consolidated-annotation/x.json"},
    "n": 1,
    "url": PRESIGNED,
}


class BadHandler:
    """A stand-in handler module; ``behaviour`` says how it misbehaves."""

    def __init__(self, behaviour: str, s3: Any) -> None:
        self.behaviour, self.s3 = behaviour, s3
        self.logger = type("PowertoolsLike", (), {"_logger": logging.getLogger("gtaudit-fuzz-bad-handler")})()

    def lambda_handler(self, event: Any, context: Any) -> Any:
        from gtaudit.exceptions import InvalidEventError

        if self.behaviour == "key-error":
            return {"n": event["n"] + 1}
        if self.behaviour == "leak" and isinstance(event, dict):
            raise InvalidEventError(f"bad event {event}")
        if self.behaviour == "log-event":
            self.logger._logger.warning("got %s", event)
        if self.behaviour == "write-outside":
            self.s3.put_object(Bucket=BUCKET, Key="images/overwritten.jpg", Body=b"x")
        return {"ok": True}


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ("key-error", (KeyError, TypeError, ExceptionGroup)),
        ("leak", AssertionError),
        ("write-outside", AssertionError),
        ("log-event", AssertionError),
    ],
)
def test_fuzz_catches_a_bad_handler(behaviour: str, error: Any, lambda_context: Any) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        with pytest.raises(error):
            fuzz(BadHandler(behaviour, s3), [SEED], writes_under_payload_job, lambda_context, max_examples=30)


def test_fuzz_passes_a_good_handler(lambda_context: Any) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        fuzz(BadHandler("none", s3), [SEED], writes_under_payload_job, lambda_context, max_examples=30)


@given(value=st.text(min_size=4, max_size=200).filter(lambda v: not v.startswith("s3://")))
@settings(max_examples=100, deadline=None, database=None)
def test_s3_uri_errors_never_echo_the_value(value: str) -> None:
    from gtaudit.exceptions import InvalidS3UriError
    from gtaudit.s3uri import parse_s3_uri

    with pytest.raises(InvalidS3UriError) as info:
        parse_s3_uri(value)
    # The message is fixed text; at most it names the URI scheme (letters and digits).
    assert re.fullmatch(r"not an s3:// URI( \(scheme '[A-Za-z0-9]{1,16}'\))?", str(info.value))
    with pytest.raises(InvalidS3UriError) as info:
        parse_s3_uri(PRESIGNED)
    assert not any(m in str(info.value) for m in SECRET_MARKERS)
