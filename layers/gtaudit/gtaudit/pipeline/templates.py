"""The worker task templates in S3, versioned with the code that uses them.

The templates (``ui/*.liquid.html``) ship inside the ``gtaudit`` package (``gtaudit/ui`` links to
the repository's ``ui/``; ``sam build`` copies the files into the layer). Their S3 home is
``s3://<bucket>/templates/<version>/<file>``, where ``<version>`` is a hash of the files: the
code of a deployment always names the templates it was built with, and an old job keeps its own.

They reach S3 with no manual step: the ``WorkerTemplates`` custom resource uploads them on every
deployment whose layer changed and records the version in ``templates/current.json`` (which
``gtaudit start`` reads, so a run starts with the deployed templates); the orchestrator calls
``ensure_templates`` before it creates a job (a HEAD per file when they are already there).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib.resources import files
from typing import Any

from botocore.exceptions import ClientError

from gtaudit.s3io import exists, is_not_found
from gtaudit.s3uri import S3Uri

LABELING = "segmentation.liquid.html"
AUDIT = "audit.liquid.html"
POINTER = "templates/current.json"


@cache
def packaged() -> dict[str, bytes]:
    """``{file name: content}`` of the templates shipped in the package."""
    root = files("gtaudit") / "ui"
    return {p.name: p.read_bytes() for p in sorted(root.iterdir(), key=lambda p: p.name) if p.name.endswith(".html")}


def version(templates: dict[str, bytes] | None = None) -> str:
    """A short hash of every template file, names included."""
    h = hashlib.sha256()
    for name, body in sorted((templates or packaged()).items()):
        h.update(name.encode() + b"\0" + hashlib.sha256(body).digest())
    return h.hexdigest()[:16]


def ensure_templates(s3: Any, bucket: str, *, pointer: bool = False) -> dict[str, Any]:
    """Upload this code's templates if they are not in S3 yet; return their URIs.

    Parameters
    ----------
    s3
        A boto3 S3 client.
    bucket
        The data bucket.
    pointer
        Also record this version in ``templates/current.json`` (the deployment does).

    Returns
    -------
    dict
        ``{"version", "labeling", "audit", "files": {name: uri}}``.
    """
    templates = packaged()
    ver = version(templates)
    uris: dict[str, str] = {}
    for name, body in templates.items():
        uri = S3Uri(bucket, f"templates/{ver}/{name}")
        if not exists(s3, uri):
            s3.put_object(Bucket=bucket, Key=uri.key, Body=body, ContentType="text/html; charset=utf-8")
        uris[name] = str(uri)
    out: dict[str, Any] = {
        "version": ver,
        "labeling": uris.get(LABELING, ""),
        "audit": uris.get(AUDIT, ""),
        "files": uris,
    }
    if pointer:
        s3.put_object(Bucket=bucket, Key=POINTER, Body=json.dumps(out).encode(), ContentType="application/json")
    return out


def deployed_templates(s3: Any, bucket: str) -> dict[str, Any] | None:
    """The templates the stack's deployment uploaded (``templates/current.json``), or None."""
    try:
        body = s3.get_object(Bucket=bucket, Key=POINTER)["Body"].read()
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise
    data = json.loads(body)
    return data if isinstance(data, dict) else None


def on_custom_resource(event: dict[str, Any], s3: Any) -> dict[str, Any]:
    """The ``WorkerTemplates`` custom resource: upload on Create/Update, keep everything on Delete.

    Old versions stay in S3 on purpose: a job still running from an earlier deployment uses them.

    Returns
    -------
    dict
        The resource's ``Data``: ``{"Version", "LabelingTemplateUri", "AuditTemplateUri"}``.
    """
    if event.get("RequestType") == "Delete":
        return {}
    bucket = str((event.get("ResourceProperties") or {}).get("Bucket", ""))
    if not bucket:
        raise ValueError("the WorkerTemplates resource needs a Bucket property")
    uris = ensure_templates(s3, bucket, pointer=True)
    return {"Version": uris["version"], "LabelingTemplateUri": uris["labeling"], "AuditTemplateUri": uris["audit"]}


def send_cfn_response(event: dict[str, Any], status: str, data: dict[str, Any], reason: str = "") -> None:
    """PUT a custom resource's result to CloudFormation's presigned ``ResponseURL``."""
    import urllib.request

    body = json.dumps({
        "Status": status,
        "Reason": reason[:1000] or "see the function's log",
        "PhysicalResourceId": event.get("PhysicalResourceId") or f"worker-templates-{event.get('LogicalResourceId')}",
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "Data": data,
    }).encode()  # fmt: skip
    url = str(event["ResponseURL"])
    if not url.startswith("https://"):
        raise ValueError("ResponseURL must be https")
    req = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(req, timeout=30) as resp:
        resp.read()
