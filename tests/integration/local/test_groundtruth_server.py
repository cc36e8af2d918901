"""The emulator's HTTP server: botocore still works; a web page or a rebound host name does not."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.session import Session
from gtaudit_local.groundtruth.server import start_server

CALLS: list[tuple[str, bytes]] = []


def api(target: str, body: bytes) -> tuple[int, dict[str, Any]]:
    CALLS.append((target, body))
    return 200, {"LabelingJobSummaryList": []}


def get(path: str) -> tuple[int, bytes, str]:
    return 200, b"object", "image/png"


@pytest.fixture
def port() -> Iterator[int]:
    CALLS.clear()
    server, thread = start_server(api, get)
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def send(port: int, method: str, headers: dict[str, str], body: bytes | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, "/" if method == "POST" else "/s3/b/k.png", body=body, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def test_a_botocore_client_still_calls_the_api(port: int) -> None:
    sm = Session().create_client(
        "sagemaker",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    assert sm.list_labeling_jobs()["LabelingJobSummaryList"] == []
    assert [target for target, _ in CALLS] == ["SageMaker.ListLabelingJobs"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "evil.example", "Content-Type": "application/x-amz-json-1.1"},  # DNS rebinding
        {"Origin": "http://evil.example", "Content-Type": "application/x-amz-json-1.1"},  # a page elsewhere
        {"Origin": "http://evil.example", "Content-Type": "text/plain"},  # its simple, preflight-free POST
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
    ],
)
def test_an_api_call_from_a_web_page_is_refused(port: int, headers: dict[str, str]) -> None:
    headers = {"Host": f"127.0.0.1:{port}", "X-Amz-Target": "SageMaker.StopLabelingJob", **headers}
    assert send(port, "POST", headers, b'{"LabelingJobName": "x"}') == 403
    assert CALLS == []


def test_object_links_are_refused_under_another_host_or_origin(port: int) -> None:
    assert send(port, "GET", {"Host": f"127.0.0.1:{port}"}) == 200
    assert send(port, "GET", {"Host": f"localhost:{port}"}) == 200
    assert send(port, "GET", {"Host": f"evil.example:{port}"}) == 403
    assert send(port, "GET", {"Host": f"127.0.0.1:{port}", "Origin": "http://evil.example"}) == 403
