"""GT's Liquid dialect: autoescape on, grant_read_access, to_json, escape, escape_once, skip_autoescape.

The expected strings come from "Adding automation with Liquid"
(https://docs.aws.amazon.com/sagemaker/latest/dg/sms-custom-templates-step2-automate.html), whose
example table is reproduced in ``test_the_filter_examples_of_the_gt_page``.
"""

from __future__ import annotations

import asyncio
import html
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from gtaudit_local.liquid import make_environment, render_task
from liquid.exceptions import LiquidError


def url_for(uri: str) -> str:
    return "http://127.0.0.1:9/obj?uri=" + uri + "&t=1"


def test_autoescape_is_on_by_default() -> None:
    out = render_task("<p>{{ task.input.h }}</p>", {"h": '<b>"Tom & Jerry"</b>'})
    assert out == "<p>&lt;b&gt;&#34;Tom &amp; Jerry&#34;&lt;/b&gt;</p>"


def test_explicit_escape_does_not_escape_twice() -> None:
    assert render_task("{{ task.input.h | escape }}", {"h": "a&b"}) == "a&amp;b"
    assert render_task("{{ task.input.h | escape_once }}", {"h": "a&amp;b<"}) == "a&amp;b&lt;"


def test_skip_autoescape_after_to_json_changes_nothing() -> None:
    data = {"labels": ['a"b', "猫"], "initialValue": None}
    template = "<pre>{{ task.input | to_json | skip_autoescape }}</pre>"
    assert render_task(template, data) == render_task(template.replace(" | skip_autoescape", ""), data)


def test_to_json_in_an_attribute_is_escaped_and_round_trips() -> None:
    out = render_task("{{ task.input.labels | to_json | escape }}", {"labels": ['a"b', "<x>"]})
    assert '"' not in out and "<" not in out
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


def test_the_filter_examples_of_the_gt_page() -> None:
    read = "Have you read 'James & the Giant Peach'?"
    template = (
        "{{ \"Have you read 'James & the Giant Peach'?\" }}|"
        "{{ \"Have you read 'James & the Giant Peach'?\" | escape }}|"
        "{{ \"Have you read 'James &amp; the Giant Peach'?\" | escape_once }}|"
        "{{ \"Have you read 'James & the Giant Peach'?\" | skip_autoescape }}|"
        "{{ task.input.jsObject | to_json }}"
    )
    out = render_task(template, {"jsObject": {"point_number": 8, "coords": [59, 76]}}).split("|")
    escaped = "Have you read &#39;James &amp; the Giant Peach&#39;?"
    assert out[:4] == [escaped, escaped, escaped, read]
    assert json.loads(out[4]) == {"point_number": 8, "coords": [59, 76]}  # GT spaces it differently


@pytest.mark.parametrize("template", ['{{ "<script>alert(1)</script>" }}', '{% echo "<script>alert(1)</script>" %}'])
def test_a_string_literal_is_escaped_like_any_value(template: str) -> None:
    assert render_task(template, {}) == "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_literals_in_filter_arguments_are_escaped_too() -> None:
    out = render_task('{{ task.input.x | append: "<i>" }}|{{ "<b>" | append: task.input.x }}', {"x": "&"})
    assert out == "&amp;&lt;i&gt;|&lt;b&gt;&amp;"


def test_to_json_is_raw_json_that_reads_back() -> None:
    value = {"label": "</script><script>alert(1)</script>", "text": "a < b & c", "quote": 'say "hi"'}
    out = render_task("{{ task.input.v | to_json }}", {"v": value})
    assert json.loads(out) == value
    assert "</script><script>alert(1)</script>" in out  # raw: the template author must escape it


def test_escape_once_keeps_entities_and_escapes_the_rest() -> None:
    out = render_task("{{ task.input.h | escape_once }}", {"h": "&copy; &#39; &#x27; & &; <\"'"})
    assert out == "&copy; &#39; &#x27; &amp; &amp;; &lt;&#34;&#39;"


def test_escape_once_output_is_not_escaped_again() -> None:
    assert render_task("{{ task.input.h | escape_once | skip_autoescape }}", {"h": "a&amp;<"}) == "a&amp;&lt;"


def test_async_rendering_escapes_the_same_way() -> None:
    template = make_environment().from_string('{{ "<i>" }}{{ task.input.v | to_json }}{% echo "&" %}')
    # In a thread of its own: a browser test on the same xdist worker may leave Playwright's event
    # loop set as this thread's running loop, and asyncio.run refuses to nest.
    with ThreadPoolExecutor(1) as pool:
        out = pool.submit(asyncio.run, template.render_async(task={"input": {"v": ["<"]}})).result()
    assert out == '&lt;i&gt;["<"]&amp;'
