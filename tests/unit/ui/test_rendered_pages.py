"""The shipped templates, rendered: byte for byte as before, and inert whatever a task input holds.

``golden/<case>.json`` holds a template name and a ``taskInput``; ``golden/<case>.html`` is what
``render_task(template, taskInput, preview.url_for)`` returned for it with the renderer of commit
db059a4, before output statements escaped string literals and ``to_json`` stopped being escaped
on its own. The shipped templates end every value with ``escape`` (``to_json | escape`` for
JSON), so GT's rules must not change a byte of them. The inputs are the examples in
``ui/examples/``, the task inputs ``labeling_pre``/``audit_pre`` make of the events in
``events/``, and two hostile inputs whose labels, legend, labelers, reasons, comment, notes, round
and URIs carry ``</script><script>alert(1)</script>`` and an attribute breakout. Regenerate a
golden file only for a deliberate template change, and read its diff.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from gtaudit_local.liquid import render_task
from gtaudit_local.preview import url_for

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.json"))
BREAKOUT = "</script><script>alert(1)</script>"


def case(name: str) -> tuple[str, dict[str, Any]]:
    """The template text and the task input of one golden case."""
    data = json.loads((GOLDEN / f"{name}.json").read_text(encoding="utf-8"))
    return (ROOT / "ui" / data["template"]).read_text(encoding="utf-8"), data["taskInput"]


def test_every_template_has_golden_cases() -> None:
    templates = {json.loads((GOLDEN / f"{n}.json").read_text(encoding="utf-8"))["template"] for n in CASES}
    assert templates == {p.name for p in (ROOT / "ui").glob("*.liquid.html")}
    assert {"segmentation-hostile", "audit-hostile"} <= set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_rendering_is_byte_identical_to_the_golden_page(name: str) -> None:
    template, task = case(name)
    assert render_task(template, task, url_for).encode("utf-8") == (GOLDEN / f"{name}.html").read_bytes()


@pytest.mark.parametrize("name", ["segmentation-hostile", "audit-hostile"])
def test_a_hostile_task_input_adds_no_markup(name: str) -> None:
    template, task = case(name)
    assert BREAKOUT in json.dumps(task, ensure_ascii=False)  # the case really carries the payload
    page = render_task(template, task, url_for)
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    # Every tag on the page is one the template wrote: nothing from the input became markup.
    assert re.findall(r"</?script\b", page) == re.findall(r"</?script\b", template)
    assert page.count("&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;") > 0
