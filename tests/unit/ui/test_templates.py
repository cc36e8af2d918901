"""The worker templates as text: GT's limits, escaping rules, and what they render (no browser)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from gtaudit.exceptions import InvalidTaskInputError
from gtaudit.reasons import REASONS
from gtaudit_local.crowd import AWS_CROWD_SCRIPT, asset, localize_page
from gtaudit_local.liquid import render_task
from gtaudit_local.preview import folder_reader, load_task_input, url_for

ROOT = Path(__file__).resolve().parents[3]
TEMPLATES = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "ui").glob("*.liquid.html")}
EXAMPLES = ROOT / "ui" / "examples"
EVIL = '"><img src=x onerror=alert(1)><script>alert(2)</script>'


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def test_both_templates_exist() -> None:
    assert set(TEMPLATES) == {"segmentation.liquid.html", "audit.liquid.html"}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_template_fits_gt_and_loads_the_aws_script(name: str) -> None:
    text = TEMPLATES[name]
    assert len(text) < 128_000  # RenderUiTemplate / UiTemplateS3Uri limit
    assert f'<script src="{AWS_CROWD_SCRIPT}"></script>' in text
    assert "<crowd-form>" in text
    assert "skip_autoescape" not in text


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_uri_goes_through_grant_read_access(name: str) -> None:
    text = TEMPLATES[name]
    for field in ("taskObject", "original", "overlay", "mask", "initialValue.src"):
        for use in re.findall(r"\{\{\s*task\.input\." + re.escape(field) + r"\b[^}]*\}\}", text):
            assert "grant_read_access" in use, use


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_no_task_input_inside_script(name: str) -> None:
    for script in re.findall(r"<script>(.*?)</script>", TEMPLATES[name], re.S):
        assert "{{" not in script
        assert "{%" not in script


def test_segmentation_reason_texts_cover_every_reason_code() -> None:
    text = TEMPLATES["segmentation.liquid.html"]
    for reason in REASONS:
        assert f'{{% when "{reason.code}" %}}' in text
        assert reason.en in text
        assert reason.ja in text


def test_segmentation_attributes_parse_back_to_the_task_input() -> None:
    task = example("segmentation-rework-input")
    task["labels"] = [*task["labels"], EVIL, 'it\'s "quoted"']
    page = render_task(TEMPLATES["segmentation.liquid.html"], task, url_for)
    tag = re.search(r"<crowd-semantic-segmentation\b(.*?)>", page, re.S)
    assert tag is not None
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', tag.group(1)))
    assert attrs["name"] == "crowd-semantic-segmentation"
    assert json.loads(html.unescape(attrs["labels"])) == task["labels"]
    initial = json.loads(html.unescape(attrs["initial-value"]))
    assert initial["labelMappings"] == task["initialValue"]["labelMappings"]
    assert initial["src"] == "/s3/gtaudit-examples/samples/reference/astronaut.png"
    assert "<img src=x" not in page
    assert "<script>alert" not in page


def test_round_one_has_no_initial_value_and_no_feedback() -> None:
    page = render_task(TEMPLATES["segmentation.liquid.html"], example("segmentation-input"), url_for)
    assert "initial-value" not in page
    assert 'id="gta-feedback"' not in page


@pytest.mark.parametrize(
    ("name", "title", "expand"),
    [
        ("segmentation-input", "Nothing is painted yet", None),
        ("segmentation-rework-input", "まだ何も塗られていません", "▸ コメントと指摘 (2) を表示"),
    ],
)
def test_segmentation_guards_render_in_the_task_language(name: str, title: str, expand: str | None) -> None:
    page = render_task(TEMPLATES["segmentation.liquid.html"], example(name), url_for)
    assert f'<h3 id="gta-empty-title">{title}</h3>' in page
    assert page.count("<dialog ") == 1
    if expand is None:
        assert "gta-fb" not in page.split("</style>", 1)[1]
    else:
        assert '<details class="gta-fb" id="gta-feedback"' in page  # closed: no `open` attribute
        assert f'<span class="gta-expand">{expand}</span>' in page


def test_audit_renders_one_checkbox_per_reason_and_the_answer_fields() -> None:
    task = example("audit-input")
    page = render_task(TEMPLATES["audit.liquid.html"], task, url_for)
    assert re.findall(r'<crowd-checkbox name="([^"]+)" value="on"', page) == [f"reason-{r.code}" for r in REASONS]
    assert '<crowd-radio-button name="approve" value="on">' in page
    assert '<crowd-radio-button name="reject" value="on">' in page
    assert '<crowd-text-area name="comment"' in page
    assert '<input type="hidden" name="region-notes"' in page
    assert "Agreement 87%" in page
    assert "private.us-east-1.3f9c0a11" in page


def test_audit_without_agreement_says_so() -> None:
    page = render_task(TEMPLATES["audit.liquid.html"], {**example("audit-input"), "agreement": None}, url_for)
    assert "Agreement n/a (one labeler)" in page


def test_localize_page_swaps_only_the_aws_script() -> None:
    page = localize_page(TEMPLATES["audit.liquid.html"], submit_url="/submit?v=1", extra={"version": 1})
    assert AWS_CROWD_SCRIPT not in page
    scripts = '<script src="/_crowd/crowd-elements.js"></script><script src="/_crowd/crowd-segmentation.js"></script>'
    assert page.count(scripts) == 1  # in this order: the painting tool builds on the elements' helpers
    assert 'window.CROWD_LOCAL = {"submitUrl": "/submit?v=1", "mode": "preview", "version": 1};' in page
    assert b"customElements.define" in asset("crowd-elements.js")
    assert b'define("crowd-semantic-segmentation"' in asset("crowd-segmentation.js")


def test_load_task_input_accepts_a_pre_lambda_response_and_refuses_others() -> None:
    assert load_task_input({"taskInput": {"a": 1}, "isHumanAnnotationRequired": True}) == {"a": 1}
    assert load_task_input({"a": 1}) == {"a": 1}
    with pytest.raises(InvalidTaskInputError, match="consolidation event"):
        load_task_input({"version": "2018-10-16", "payload": {"s3Uri": "s3://bkt/x.json"}})
    with pytest.raises(InvalidTaskInputError, match="skips this object: nope"):
        load_task_input({"taskInput": {"objectId": "x", "skipReason": "nope"}, "isHumanAnnotationRequired": False})
    with pytest.raises(InvalidTaskInputError):
        load_task_input([1])


@pytest.mark.parametrize(
    ("event", "stage", "template"),
    [
        ("labeling_pre-rework", "labeling", "segmentation.liquid.html"),
        ("labeling_pre-source-ref", "labeling", "segmentation.liquid.html"),
        ("audit_pre-task", "audit", "audit.liquid.html"),
    ],
)
def test_pre_annotation_events_become_task_inputs(
    monkeypatch: pytest.MonkeyPatch, event: str, stage: str, template: str
) -> None:
    monkeypatch.delenv("ALLOWED_BUCKETS", raising=False)
    data = json.loads((ROOT / "events" / f"{event}.json").read_text(encoding="utf-8"))
    task = load_task_input(data, stage=stage)
    assert task["objectId"] == data["dataObject"]["object-id"]
    page = render_task(TEMPLATES[template], task, url_for)
    assert "/s3/gtaudit-test-data/" in page
    if event == "labeling_pre-rework":
        assert 'id="gta-feedback"' in page
        assert "initial-value=" in page


def test_an_unworkable_event_says_why() -> None:
    data = json.loads((ROOT / "events" / "labeling_pre-unsupported-extension.json").read_text(encoding="utf-8"))
    with pytest.raises(InvalidTaskInputError, match="unsupported image type"):
        load_task_input(data, stage="labeling")


def test_folder_reader_stays_inside_its_root(tmp_path: Path) -> None:
    (tmp_path / "bkt" / "a").mkdir(parents=True)
    (tmp_path / "bkt" / "a" / "x.png").write_bytes(b"png")
    (tmp_path / "y.png").write_bytes(b"y")
    read = folder_reader(tmp_path)
    assert read("bkt", "a/x.png") == b"png"
    assert read("other", "y.png") == b"y"  # root/key when root/bucket/key is absent
    assert read("bkt", "../../../etc/passwd") is None


@pytest.mark.parametrize("comment", ["", None, "   "])
def test_feedback_without_comment_or_notes_shows_no_empty_boxes(comment: str | None) -> None:
    task = example("segmentation-rework-input")
    task["feedback"] = {**task["feedback"], "comment": comment, "notes": []}
    page = render_task(TEMPLATES["segmentation.liquid.html"], task, url_for)
    assert 'id="gta-feedback"' in page
    assert 'class="gta-comment"' not in page
    assert 'class="gta-thumb"' not in page
    assert 'class="gta-reasons"' in page
