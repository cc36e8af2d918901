"""GT's Liquid dialect: autoescape on, grant_read_access, to_json, escape, escape_once, skip_autoescape."""

from __future__ import annotations

import json

import pytest
from gtaudit_local.liquid import render_task
from liquid.exceptions import LiquidError


def url_for(uri: str) -> str:
    return "http://127.0.0.1:9/obj?uri=" + uri + "&t=1"


def test_autoescape_is_on_by_default() -> None:
    out = render_task("<p>{{ task.input.h }}</p>", {"h": '<b>"Tom & Jerry"</b>'})
    assert out == "<p>&lt;b&gt;&#34;Tom &amp; Jerry&#34;&lt;/b&gt;</p>"


def test_explicit_escape_does_not_escape_twice() -> None:
    assert render_task("{{ task.input.h | escape }}", {"h": "a&b"}) == "a&amp;b"
    assert render_task("{{ task.input.h | escape_once }}", {"h": "a&amp;b<"}) == "a&amp;b&lt;"


def test_skip_autoescape_outputs_raw_json_for_scripts() -> None:
    data = {"labels": ['a"b', "猫"], "initialValue": None}
    out = render_task("<script>var x = {{ task.input | to_json | skip_autoescape }};</script>", data)
    inner = out.removeprefix("<script>var x = ").removesuffix(";</script>")
    assert json.loads(inner) == data


def test_to_json_in_an_attribute_is_escaped_and_round_trips() -> None:
    out = render_task("{{ task.input.labels | to_json | escape }}", {"labels": ['a"b', "<x>"]})
    assert '"' not in out and "<" not in out
    import html

    assert json.loads(html.unescape(out)) == ['a"b', "<x>"]


def test_grant_read_access_uses_url_for_and_escapes_the_ampersand() -> None:
    out = render_task('<img src="{{ task.input.src | grant_read_access }}">', {"src": "s3://b/k.jpg"}, url_for)
    assert out == '<img src="http://127.0.0.1:9/obj?uri=s3://b/k.jpg&amp;t=1">'


def test_grant_read_access_of_missing_or_non_s3_values() -> None:
    assert render_task("[{{ task.input.none | grant_read_access }}]", {}, url_for) == "[]"
    assert render_task("{{ task.input.u | grant_read_access }}", {"u": "https://x/y"}, url_for) == "https://x/y"


def test_undefined_to_json_is_null_and_loops_work() -> None:
    out = render_task("{{ task.input.x | to_json }}|{% for l in task.input.l %}{{ l }},{% endfor %}", {"l": [1, 2]})
    assert out == "null|1,2,"


def test_unknown_filter_is_an_error() -> None:
    with pytest.raises(LiquidError):
        render_task("{{ task.input.x | no_such_filter }}", {"x": 1})
