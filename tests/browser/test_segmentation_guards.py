"""The labeling page's guards against slips, in headless Chromium.

An empty mask is submitted only after the worker confirms it in the page's own dialog, a painted
one without a question, and the guard lets the submit through whenever it cannot tell (it reads
the element's documented answer, which AWS's element may shape differently). In a rework round the
auditor's feedback stays a compact panel, so the tools and the top of the canvas are in view
without scrolling, however long the comment and however many notes.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from browser.task_pages import SEGMENTATION, image_origin, png, rework_input, segmentation_input
from gtaudit_local.preview import TaskPageServer, s3_reader
from PIL import Image

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

SUBMIT = "crowd-button[form-action=submit] button"
DIALOG_OPEN = "document.getElementById('gta-empty').open"
SEVEN_LABELS = ["person", "animal", "vehicle", "building", "plant", "sky", "object"]  # as the examples
LONG_FEEDBACK = {
    "verdict": "reject",
    "reasons": ["loose-boundary", "missing-object", "extra-region"],
    "comment": "The box's right edge spills over the background and the bar is only half painted. " * 12,
    "notes": [
        {"n": i, "x": 0.09 * i, "y": 0.08 * i, "text": f"note {i}: follow this edge more closely"} for i in range(1, 11)
    ],
    "auditors": ["private.us-east-1.cccc"],
}


def decoded(answer: dict[str, Any]) -> Image.Image:
    """The mask of a submitted answer."""
    data = answer["crowd-semantic-segmentation"]["labeledImage"]["pngImageData"]
    return Image.open(io.BytesIO(base64.b64decode(data)))


def not_submitted(page: Any, server: TaskPageServer) -> bool:
    """Nothing reached the server, and the page did not take itself for submitted."""
    page.wait_for_timeout(300)
    return not server.submitted.is_set() and page.locator("#crowd-answer-panel").count() == 0


@pytest.mark.parametrize(
    ("language", "title", "confirm"),
    [("en", "Nothing is painted yet", "Submit an empty mask"), ("ja", "まだ何も塗られていません", "空のまま送信")],
)
def test_an_empty_mask_is_submitted_only_once_confirmed(
    page: Any, s3: Any, images: str, artifacts: Path, language: str, title: str, confirm: str
) -> None:
    task = segmentation_input(images, language=language)
    with TaskPageServer.from_template(SEGMENTATION, task, s3_reader(s3)) as server:
        page.goto(server.url)
        page.wait_for_selector("crowd-semantic-segmentation[data-ready]")
        page.click(SUBMIT)
        assert page.evaluate(DIALOG_OPEN) is True
        assert page.locator("#gta-empty h3").inner_text() == title
        assert page.locator("#gta-empty-submit").inner_text() == confirm
        page.screenshot(path=str(artifacts / f"segmentation-empty-{language}.png"))
        assert not_submitted(page, server)
        page.click("#gta-empty-submit")
        answer = server.wait(timeout=10)
    assert answer is not None
    mask = decoded(answer)
    assert mask.size == (200, 150)
    assert mask.getextrema()[3] == (0, 0)  # every pixel transparent: the empty mask, as confirmed
    assert page.watch.dialogs == []  # the page's own dialog, not the browser's
    assert page.watch.errors == []


def test_going_back_keeps_the_work_and_a_painted_mask_then_goes_without_asking(page: Any, s3: Any, images: str) -> None:
    with TaskPageServer.from_template(SEGMENTATION, segmentation_input(images), s3_reader(s3)) as server:
        page.goto(server.url)
        page.wait_for_selector("crowd-semantic-segmentation[data-ready]")
        left, top, zoom = image_origin(page)
        corners = [(20, 20), (100, 20), (100, 80), (20, 80)]
        page.keyboard.press("2")
        page.keyboard.press("p")
        for x, y in corners[:3]:  # a polygon under way: nothing painted yet
            page.mouse.click(left + x * zoom, top + y * zoom)
        state = (
            "() => { const e = document.querySelector('crowd-semantic-segmentation');"
            " return [e.tool, e.current, e.poly.length, e.zoom]; }"
        )
        before = page.evaluate(state)
        assert before[:3] == ["polygon", 2, 3]

        page.click(SUBMIT)
        assert page.evaluate(DIALOG_OPEN) is True
        page.keyboard.press("Escape")  # the dialog's own cancel
        assert page.evaluate(DIALOG_OPEN) is False
        page.click(SUBMIT)
        page.click("#gta-empty-cancel")
        assert page.evaluate(DIALOG_OPEN) is False
        assert not_submitted(page, server)
        assert page.evaluate(state) == before  # same tool, label, open polygon and zoom

        for x, y in [corners[3], corners[0]]:  # finish the polygon where it was left
            page.mouse.click(left + x * zoom, top + y * zoom)
        page.click(SUBMIT)
        answer = server.wait(timeout=10)
        assert page.evaluate(DIALOG_OPEN) is False
    assert answer is not None
    assert decoded(answer).getpixel((60, 50)) == (0x1F, 0x77, 0xB4, 255)
    assert page.watch.errors == []


def test_an_untouched_previous_mask_is_not_empty(page: Any, s3: Any, images: str) -> None:
    task = rework_input(images, {**LONG_FEEDBACK, "comment": "", "notes": []})
    with TaskPageServer.from_template(SEGMENTATION, task, s3_reader(s3)) as server:
        page.goto(server.url)
        page.wait_for_selector("crowd-semantic-segmentation[data-ready]")
        page.click(SUBMIT)
        answer = server.wait(timeout=10)
        assert page.evaluate(DIALOG_OPEN) is False
    assert answer is not None
    assert answer["crowd-semantic-segmentation"]["initialValueModified"] is False


# What the element's answer may look like at submit time. The guard reads it as the crowd element
# reference's example does (`el.value || el._submittableValue`); each case replaces that value.
BROWSER_PNG = """([fill, w, h]) => { const c = document.createElement('canvas'); c.width = 200; c.height = 150;
  const g = c.getContext('2d'); g.fillStyle = fill; g.fillRect(0, 0, w, h);
  return c.toDataURL('image/png').split(',')[1]; }"""
PALETTE_PNG = base64.b64encode(png(Image.new("P", (200, 150), 0))).decode()


@pytest.mark.parametrize(
    ("case", "asks"),
    [
        ("transparent", True),
        ("white", True),
        ("one red pixel", False),
        ("transparent, another encoder", False),
        ("no size", False),
        ("no value", False),
        ("value throws", False),
    ],
)
def test_the_guard_asks_only_when_sure_the_mask_is_empty(
    page: Any, s3: Any, images: str, case: str, asks: bool
) -> None:
    with TaskPageServer.from_template(SEGMENTATION, segmentation_input(images), s3_reader(s3)) as server:
        page.goto(server.url)
        page.wait_for_selector("crowd-semantic-segmentation[data-ready]")
        painted = {"transparent": ["#fff", 0, 0], "white": ["#ffffff", 200, 150], "one red pixel": ["#d62728", 1, 1]}
        data = page.evaluate(BROWSER_PNG, painted[case]) if case in painted else PALETTE_PNG
        size = None if case == "no size" else {"width": 200, "height": 150}
        value = None if case == "no value" else {"inputImageProperties": size, "labeledImage": {"pngImageData": data}}
        page.evaluate(
            """([value, throws]) => Object.defineProperty(document.querySelector('crowd-semantic-segmentation'),
                 'value', { get() { if (throws) throw new Error('other internals'); return value; } })""",
            [value, case == "value throws"],
        )
        page.click(SUBMIT)
        if asks:
            assert page.evaluate(DIALOG_OPEN) is True
            assert not_submitted(page, server)
        else:
            assert server.wait(timeout=10) is not None
            assert page.evaluate(DIALOG_OPEN) is False
    assert page.watch.errors == []


@pytest.mark.parametrize(("language", "width", "height"), [("en", 1366, 768), ("ja", 1366, 768), ("en", 1920, 1080)])
def test_long_feedback_leaves_the_tools_and_the_canvas_in_view(
    page: Any, s3: Any, images: str, artifacts: Path, language: str, width: int, height: int
) -> None:
    page.set_viewport_size({"width": width, "height": height})
    task = rework_input(images, LONG_FEEDBACK, language=language, labels=SEVEN_LABELS)
    in_view = """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + Math.min(r.height, 20) / 2);
        return [r.top, r.bottom, !!hit && !!hit.closest(sel)]; }"""
    with TaskPageServer.from_template(SEGMENTATION, task, s3_reader(s3)) as server:
        page.goto(server.url)
        page.wait_for_selector("crowd-semantic-segmentation[data-ready]")
        page.screenshot(path=str(artifacts / f"segmentation-rework-long-{language}-{width}x{height}.png"))
        assert page.evaluate("document.scrollingElement.scrollTop") == 0
        top, bottom, seen = page.evaluate(in_view, ".css-tools")  # brush, polygon, eraser, move
        assert top >= 0 and bottom <= height and seen, (top, bottom, seen)
        top, _, seen = page.evaluate(in_view, ".css-viewport")
        assert 0 <= top < height / 4 and seen
        assert len(page.locator(".gta-reason").all()) == 3
        assert page.locator(".gta-reason").first.is_visible()

        # Opened, the comment and the notes scroll inside the panel instead of growing it.
        page.click("#gta-feedback summary")
        assert page.locator(".gta-comment").is_visible()
        body = page.locator(".gta-fb-body").bounding_box()
        assert body is not None and body["height"] <= 0.45 * height + 1
        assert page.locator(".gta-notes li").count() == 10
        page.screenshot(path=str(artifacts / f"segmentation-rework-long-{language}-{width}x{height}-open.png"))
    assert page.watch.errors == []
