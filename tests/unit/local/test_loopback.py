"""The checks every local HTTP server applies: its own Host, its own Origin, JSON POSTs."""

from __future__ import annotations

import pytest
from gtaudit_local.loopback import own_hosts, refusal

HOSTS = own_hosts("127.0.0.1", 8800)
PAGE = {"post_types": frozenset({"application/json"}), "post_needs_origin": True}
API = {"post_types": frozenset({"application/x-amz-json-1.1"}), "post_needs_origin": False}


def check(method: str, headers: dict[str, str], rules: dict[str, object] = PAGE) -> str | None:
    return refusal(method, headers.items(), HOSTS, **rules)  # type: ignore[arg-type]


def test_own_hosts_are_loopback_names_with_the_port() -> None:
    assert own_hosts("127.0.0.1", 8800) == {"127.0.0.1:8800", "localhost:8800"}
    assert own_hosts("127.0.0.1", 80) >= {"127.0.0.1", "localhost"}  # browsers omit the default port


@pytest.mark.parametrize("host", ["127.0.0.1:8800", "localhost:8800", "LocalHost:8800"])
def test_a_get_to_the_servers_own_name_is_answered(host: str) -> None:
    assert check("GET", {"Host": host}) is None
    assert check("GET", {"Host": host, "Origin": f"http://{host}"}) is None


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8800", "127.0.0.1:8801", "127.0.0.1", "", "[::1]:8800"])
def test_another_host_is_refused(host: str) -> None:
    assert check("GET", {"Host": host}) == "unknown Host"


def test_no_host_or_two_hosts_are_refused() -> None:
    assert check("GET", {}) == "unknown Host"
    assert refusal("GET", [("Host", "127.0.0.1:8800"), ("Host", "evil.example")], HOSTS, **PAGE) is not None  # type: ignore[arg-type]


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "https://127.0.0.1:8800", "http://127.0.0.1:8801"])
def test_another_origin_is_refused_whatever_the_method(origin: str) -> None:
    for method in ("GET", "POST"):
        headers = {"Host": "127.0.0.1:8800", "Origin": origin, "Content-Type": "application/json"}
        assert check(method, headers) == "cross-origin request"


def test_a_page_post_needs_its_origin_and_a_json_body() -> None:
    own = {"Host": "127.0.0.1:8800", "Origin": "http://127.0.0.1:8800"}
    assert check("POST", {**own, "Content-Type": "application/json", "Content-Length": "2"}) is None
    assert check("POST", {**own, "Content-Type": "application/json; charset=utf-8"}) is None
    assert check("POST", own) is None  # a bodiless release
    assert check("POST", {**own, "Content-Type": "text/plain", "Content-Length": "2"}) is not None
    assert check("POST", {**own, "Content-Length": "2"}) is not None  # a body must say it is JSON
    assert check("POST", {**own, "Transfer-Encoding": "chunked"}) is not None
    assert check("POST", {"Host": "127.0.0.1:8800", "Content-Type": "application/json"}) is not None


def test_an_api_post_from_botocore_needs_no_origin_but_its_json_type() -> None:
    botocore = {"Host": "127.0.0.1:8800", "Content-Type": "application/x-amz-json-1.1", "Content-Length": "2"}
    assert check("POST", botocore, API) is None
    assert check("POST", {**botocore, "Content-Type": "text/plain"}, API) is not None
    assert check("POST", {**botocore, "Origin": "http://evil.example"}, API) is not None
    assert check("POST", {**botocore, "Host": "evil.example:8800"}, API) is not None
