"""Keep what moto changed, before moto's answer leaves: a WSGI middleware in front of moto.

moto's server is a WSGI application (``DomainDispatcherApplication``). :class:`Journal` wraps it:
for a request that may change an S3 object or a DynamoDB item it lets moto answer, holds the
answer, and if it is a success (2xx) reads what the request names back from moto's backend and
writes it to the :class:`~gtaudit_local.persist.store.AwsStore`; only then does the answer go to
the client. So a client that saw 200 can rely on the file and the row, and a refused request
(412 of a conditional PUT, 400 of a failed DynamoDB condition) changes nothing on disk.

=========================================  ================================================
request                                    kept
=========================================  ================================================
S3 PUT/DELETE of a key (PutObject,         the key as moto holds it now: file + row, or
CopyObject, tagging, ACL, DeleteObject)    removed if moto has no current version
S3 POST ?uploadId (CompleteMultipartU.)    the key, likewise
S3 POST ?delete (DeleteObjects)            each key of the request's ``<Delete>`` list
S3 POST to a bucket (HTML form upload)     the whole bucket, compared with moto's keys
S3 CreateBucket / DeleteBucket             the bucket's folder
DynamoDB PutItem, UpdateItem, DeleteItem,  each item the request names, read back by key
BatchWriteItem, TransactWriteItems
DynamoDB PartiQL writes, table restores    every table, read back whole
DynamoDB DeleteTable                       the table's items dropped
=========================================  ================================================

Reading back rather than decoding the request keeps one source of truth (moto decided what the
request did: conditions, copies, multipart assembly, versioning) and needs no patch of moto's
classes. Two requests on one key may finish in either order; the read-back and the write of a key
share a lock, so the last write always carries moto's latest state.

A key the project folder cannot hold (:mod:`~gtaudit_local.persist.keys`) is refused with S3's
400 ``InvalidArgument`` before moto stores it. If writing to disk fails after moto applied a
change (disk full), the client gets a 500 instead of moto's answer: it was not kept, and a
restart will not show it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

from moto.core.request import Request
from moto.dynamodb.exceptions import ResourceNotFoundException
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.s3.responses import S3Response
from moto.s3.utils import bucket_name_from_url
from moto.s3bucket_path.utils import bucket_name_from_url as path_bucket_name
from moto.s3bucket_path.utils import parse_key_name as path_key_name

from gtaudit_local.persist import moto_state
from gtaudit_local.persist.keys import UnstorableKey
from gtaudit_local.persist.store import AwsStore

log = logging.getLogger(__name__)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
_STRIPES = 64
_OBJECT_SUBRESOURCES = {"tagging", "acl", "retention", "legal-hold", "restore", "select"}  # no new bytes
_ITEM_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_WHOLE_TABLE_WRITES = {"ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction",
                       "RestoreTableFromBackup", "RestoreTableToPointInTime", "ImportTable"}  # fmt: skip


class Journal:
    """WSGI middleware: moto's dispatcher, with every successful S3/DynamoDB write kept in ``store``.

    Parameters
    ----------
    dispatcher
        moto's ``DomainDispatcherApplication``.
    store
        Where to keep what changed.
    account_id, region
        The account whose backends are kept, and the region of its DynamoDB tables (requests to
        another region pass through, unkept, with a warning).
    """

    def __init__(self, dispatcher: DomainDispatcherApplication, store: AwsStore, account_id: str, region: str) -> None:
        self.dispatcher = dispatcher
        self.store = store
        self.account_id = account_id
        self.region = region
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        app = self.dispatcher.get_application(environ)
        service = getattr(app, "service", None)
        try:
            if service == "s3":
                keep = self._s3_change(environ)
            elif service == "dynamodb":
                keep = self._dynamodb_change(environ)
            else:
                keep = None
        except UnstorableKey as exc:
            _read_body(environ)  # read, so that the client is not cut off halfway through sending it
            return _s3_error(start_response, "400 Bad Request", "InvalidArgument", str(exc))
        if keep is None:
            return app(environ, start_response)
        answer: list[Any] = []

        def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            answer[:] = [status, headers, exc_info]
            return no_write

        body = app(environ, hold)
        if answer and answer[0].startswith("2"):
            try:
                keep()
            except Exception as exc:  # anything: the client must not be told it was kept
                log.exception("could not keep a %s change in %s", service, self.store.project_dir)
                if hasattr(body, "close"):
                    body.close()
                message = f"the change was applied but could not be kept on disk: {exc}"
                if service == "s3":
                    return _s3_error(start_response, "500 Internal Server Error", "InternalError", message)
                return _dynamodb_error(start_response, message)
        start_response(*answer)
        return body

    # S3.
    def _s3_change(self, environ: Environ) -> Callable[[], None] | None:
        method = environ["REQUEST_METHOD"]
        if method not in {"PUT", "POST", "DELETE"}:
            return None
        bucket, key = bucket_and_key(environ)
        if not bucket:
            return None
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if key:
            if "uploadId" in query and method != "POST":
                return None  # UploadPart, UploadPartCopy, AbortMultipartUpload: no object yet
            if method != "DELETE" and not query.keys() & _OBJECT_SUBRESOURCES:
                self.store.check_storable(bucket, key)  # refuse before moto stores it
            if "uploads" in query:
                return None  # CreateMultipartUpload: checked now, kept on completion
            return lambda: self._keep_objects(bucket, [key])
        if method == "POST" and "delete" in query:
            listed = _deleted_keys(_read_body(environ))
            return lambda: self._keep_objects(bucket, listed)
        if query:
            return None  # bucket configuration: the template makes it again on every start
        if method == "PUT":
            return lambda: self.store.add_bucket(bucket)
        if method == "DELETE":
            return lambda: self.store.remove_bucket(bucket)
        return lambda: self._keep_bucket(bucket)  # POST: a browser form upload names its key in the form

    def _keep_objects(self, bucket: str, keys: Iterable[str]) -> None:
        for key in keys:
            with self._stripe("s3", bucket, key):
                while not self._keep_object(bucket, key):
                    pass  # a newer PUT replaced the version being copied: keep that one instead

    def _keep_object(self, bucket: str, key: str) -> bool:
        """Write the key as moto holds it now; ``False`` if it was replaced while being copied."""
        backend = moto_state.s3_backend(self.account_id)
        fake = moto_state.current_key(backend, bucket, key)
        if fake is None:
            self.store.remove_object(bucket, key)
            return True
        record = moto_state.object_record(backend, bucket, fake)
        old = self.store.object_row(bucket, key)
        same_bytes = old is not None and (old.etag, old.size) == (record.etag, record.size)
        if old is not None and same_bytes and self.store.file_matches(old):
            self.store.write_row(replace(record, mtime_ns=old.mtime_ns))  # tags, a re-PUT of the same bytes
            return True
        try:
            self.store.write_object(record, functools.partial(moto_state.copy_value, fake))
        except moto_state.KeyReplaced:
            return False
        return True

    def _keep_bucket(self, bucket: str) -> None:
        found = moto_state.s3_backend(self.account_id).buckets.get(bucket)
        in_moto = set(found.keys.keys()) if found is not None else set()
        self._keep_objects(bucket, sorted(in_moto | {r.key for r in self.store.objects(bucket)}))

    # DynamoDB.
    def _dynamodb_change(self, environ: Environ) -> Callable[[], None] | None:
        operation = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
        if operation not in _ITEM_WRITES | _WHOLE_TABLE_WRITES | {"DeleteTable"}:
            return None
        region = _signing_region(environ) or self.region
        if region != self.region:
            log.warning("DynamoDB %s in %s is not kept: the project keeps %s", operation, region, self.region)
            return None
        body = _read_body(environ)
        if operation == "DeleteTable":
            return lambda: self.store.replace_table(json.loads(body)["TableName"].rpartition("/")[2], [])
        if operation in _WHOLE_TABLE_WRITES:
            return None if _only_reads(operation, json.loads(body)) else self._keep_all_tables
        return lambda: self._keep_items(_named_items(operation, json.loads(body)))

    def _keep_items(self, named: list[tuple[str, dict[str, Any]]]) -> None:
        backend = moto_state.dynamodb_backend(self.account_id, self.region)
        keyed = []
        for table_name, attrs in named:
            with contextlib.suppress(ResourceNotFoundException):  # deleted since: DeleteTable keeps that
                table = backend.get_table(table_name)
                keyed.append((table, moto_state.item_key(table, attrs)))
        stripes = sorted({self._stripe_index("ddb", t.name, k) for t, k in keyed})
        with contextlib.ExitStack() as held:
            for i in stripes:  # in index order: two batches never wait on each other in a circle
                held.enter_context(self._stripes[i])
            self.store.write_items([(t.name, k, moto_state.item_json(t, k)) for t, k in keyed])

    def _keep_all_tables(self) -> None:
        backend = moto_state.dynamodb_backend(self.account_id, self.region)
        with contextlib.ExitStack() as held:
            for lock in self._stripes:
                held.enter_context(lock)
            for name, table in list(backend.tables.items()):
                self.store.replace_table(name, moto_state.table_items(table))

    def _stripe_index(self, *parts: str) -> int:
        return hash(parts) % _STRIPES

    def _stripe(self, *parts: str) -> threading.Lock:
        return self._stripes[self._stripe_index(*parts)]


def bucket_and_key(environ: Environ) -> tuple[str | None, str]:
    """Bucket and key as moto's S3 routing reads them from the request (path or host style)."""
    request = Request(environ, populate_request=False)
    path = unquote(request.raw_path)
    if S3Response.subdomain_based_buckets(request):
        return bucket_name_from_url(request.raw_url), path[1:]
    return path_bucket_name(request.raw_url), path_key_name(path)


def _read_body(environ: Environ) -> bytes:
    """The request body, left in place for moto to read again."""
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    body: bytes = stream.read(int(length)) if length else stream.read()
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _deleted_keys(body: bytes) -> list[str]:
    """The keys of a DeleteObjects request (``<Delete><Object><Key>``, with or without namespace)."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return []  # moto refuses it too
    return [el.text or "" for el in root.iter() if el.tag.rpartition("}")[2] == "Key"]


def _signing_region(environ: Environ) -> str | None:
    """The region of a SigV4 ``Authorization`` header (``Credential=AK/date/REGION/service/...``)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    try:
        return str(auth.split("Credential=", 1)[1].split("/")[2])
    except IndexError:
        return None


def _named_items(operation: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(table, attributes holding the key)`` of every item a write request names."""
    if operation == "PutItem":
        return [(body["TableName"], body["Item"])]
    if operation in {"UpdateItem", "DeleteItem"}:
        return [(body["TableName"], body["Key"])]
    if operation == "BatchWriteItem":
        return [(table, r["PutRequest"]["Item"] if "PutRequest" in r else r["DeleteRequest"]["Key"])
                for table, requests in body["RequestItems"].items() for r in requests]  # fmt: skip
    named = []
    for entry in body["TransactItems"]:  # TransactWriteItems
        for kind, field in (("Put", "Item"), ("Update", "Key"), ("Delete", "Key")):
            if kind in entry:
                named.append((entry[kind]["TableName"], entry[kind][field]))
    return named


def _only_reads(operation: str, body: dict[str, Any]) -> bool:
    """Whether a PartiQL request only SELECTs (the other whole-table operations always write)."""
    statements = {
        "ExecuteStatement": [body],
        "BatchExecuteStatement": body.get("Statements", []),
        "ExecuteTransaction": body.get("TransactStatements", []),
    }.get(operation)
    if statements is None:
        return False
    return all(s.get("Statement", "").lstrip().upper().startswith("SELECT") for s in statements)


def no_write(data: bytes) -> None:
    """``write`` of a WSGI answer held back from the client: moto's apps return their body instead."""
    raise RuntimeError("moto's apps return their body; a held answer does not support write()")


def _s3_error(start_response: StartResponse, status: str, code: str, message: str) -> list[bytes]:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error>").encode()  # fmt: skip
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


def _dynamodb_error(start_response: StartResponse, message: str) -> list[bytes]:
    body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": message})
    data = body.encode()
    start_response("500 Internal Server Error",
                   [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(data)))])  # fmt: skip
    return [data]
