"""The worker UIs in headless Chromium: paint and submit, audit and submit, and nothing injected runs.

Pages are rendered by the local runtime's Liquid (GT's dialect) and served by the preview server
with the local crowd elements; images come from moto's S3. The submitted answers then go through
the real consolidation Lambdas (labeling_post, audit_post) exactly as Ground Truth would send them.
"""

from __future__ import annotations

import base64
import importlib
import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from browser.task_pages import (
    ANIMAL,
    AUDIT,
    OVERLAY_KEY,
    PERSON,
    PHOTO_KEY,
    ROOT,
    SEGMENTATION,
    audit_input,
    image_origin,
    rework_input,
    segmentation_input,
)
from gtaudit.reasons import REASONS
from gtaudit_local.preview import TaskPageServer, s3_reader
from PIL import Image

# One browser per xdist worker: keep the browser tests together.
pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

EVIL = '"\'><img src=x onerror="window.__pwned=1;alert(1)"><script>window.__pwned=2;alert(2)</script>{{ 7 }}'
ARM_NOTE = "edge of the arm"


def consolidation_request(s3: Any, bucket: str, key: str, source: str, content: dict[str, Any]) -> str:
    """Write GT's consolidation request for one object answered by one worker; return its URI."""
    body = [
        {
            "datasetObjectId": "0",
            "dataObject": {"s3Uri": source},
            "annotations": [{"workerId": "private.us-east-1.aaaa", "annotationData": {"content": json.dumps(content)}}],
        }
    ]
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode())
    return f"s3://{bucket}/{key}"


def test_paint_submit_and_consolidate(
    page: Any, s3: Any, images: str, artifacts: Path, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = images
    with TaskPageServer.from_template(SEGMENTATION, segmentation_input(bucket), s3_reader(s3)) as server:
        page.goto(server.url)
        page.wait_for_selector("crowd-semantic-segmentation[data-ready]")
        left, top, zoom = image_origin(page)

        def at(x: float, y: float) -> tuple[float, float]:
            return left + x * zoom, top + y * zoom

        # The animal: a polygon around the dark box, closed by clicking its first point again.
        page.keyboard.press("2")
        page.keyboard.press("p")
        for x, y in [(20, 20), (100, 20), (100, 80), (20, 80), (20, 20)]:
            page.mouse.click(*at(x, y))
        # The person: one brush stroke along the bar.
        page.keyboard.press("1")
        page.keyboard.press("b")
        page.mouse.move(*at(135, 100))
        page.mouse.down()
        page.mouse.move(*at(155, 100), steps=5)
        page.mouse.move(*at(175, 100), steps=5)
        page.mouse.up()
        page.screenshot(path=str(artifacts / "segmentation-painted.png"))
        page.click("crowd-button[form-action=submit] button")
        answer = server.wait(timeout=10)
        page.wait_for_selector("#crowd-answer")
        page.screenshot(path=str(artifacts / "segmentation-submitted.png"))
        assert page.evaluate("document.getElementById('gta-empty').open") is False  # painted: no question
    assert page.watch.errors == []
    assert answer is not None
    assert list(answer) == ["crowd-semantic-segmentation"]
    seg = answer["crowd-semantic-segmentation"]
    assert seg["inputImageProperties"] == {"height": 150, "width": 200}
    assert seg["labelMappings"] == {"person": {"color": PERSON}, "animal": {"color": ANIMAL}}
    assert "initialValueModified" not in seg  # only when initial-value was given
    painted = Image.open(io.BytesIO(base64.b64decode(seg["labeledImage"]["pngImageData"])))
    assert painted.mode == "RGBA"
    assert painted.size == (200, 150)
    assert painted.getpixel((60, 50)) == (0x1F, 0x77, 0xB4, 255)
    assert painted.getpixel((150, 100)) == (0x2C, 0xA0, 0x2C, 255)
    assert painted.getpixel((5, 5))[3] == 0
    colours = {c for _, c in painted.getcolors(maxcolors=1 << 16)}
    assert colours == {(0, 0, 0, 0), (0x1F, 0x77, 0xB4, 255), (0x2C, 0xA0, 0x2C, 255)}  # hard edges
    animal = sum(n for n, c in painted.getcolors(maxcolors=1 << 16) if c[:3] == (0x1F, 0x77, 0xB4))
    assert 4600 <= animal <= 5000  # the 80 x 60 box, give or take a row of click rounding

    # Ground Truth hands the answer to the consolidation Lambda.
    monkeypatch.setenv("ALLOWED_BUCKETS", bucket)
    post = importlib.reload(importlib.import_module("labeling_post.app"))
    job_root = f"s3://{bucket}/out/job-a"
    uri = consolidation_request(
        s3,
        bucket,
        "out/job-a/annotations/consolidated-annotation/consolidation-request/iteration-1/2026-11-24_10:00:00.json",
        f"s3://{bucket}/{PHOTO_KEY}",
        answer,
    )
    event = {
        "version": "2018-10-16",
        "labelingJobArn": "arn:aws:sagemaker:us-east-1:111122223333:labeling-job/job-a",
        "labelCategories": ["person", "animal"],
        "labelAttributeName": "label-r1",
        "outputConfig": f"{job_root}/annotations",
        "payload": {"s3Uri": uri},
    }
    [result] = post.lambda_handler(event, lambda_context)
    content = result["consolidatedAnnotation"]["content"]["label-r1"]
    assert content["status"] == "consolidated", content
    assert content["image-size"] == {"width": 200, "height": 150}
    names = {v["class-name"]: int(k) for k, v in content["internal-color-map"].items()}
    mask_key = content["mask-ref"].split("/", 3)[3]
    mask = Image.open(io.BytesIO(s3.get_object(Bucket=bucket, Key=mask_key)["Body"].read()))
    assert mask.mode == "P"
    assert mask.getpixel((60, 50)) == names["animal"]
    assert mask.getpixel((150, 100)) == names["person"]
    assert mask.getpixel((5, 5)) == names["BACKGROUND"] == 0


def test_reject_with_two_pins_and_a_reason_then_audit_post(
    page: Any, s3: Any, images: str, artifacts: Path, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = images
    with TaskPageServer.from_template(AUDIT, audit_input(bucket), s3_reader(s3)) as server:
        page.goto(server.url)
        # The mask was decoded on a canvas: the legend shows each class's share of the image.
        page.wait_for_function("document.querySelector('.gta-class .pc').textContent !== ''")
        shares = page.locator(".gta-class .pc").all_text_contents()
        assert shares == ["1.7%", "16.0%"]  # 500 and 4800 of 30000 pixels
        page.screenshot(path=str(artifacts / "audit-overlay.png"))

        page.keyboard.press("r")
        box = page.locator("#gta-original").bounding_box()
        for fx, fy, text in [(0.3, 0.35, ARM_NOTE), (0.75, 0.66, "too wide")]:
            page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
            page.keyboard.type(text)  # the new note's input has the focus
            page.keyboard.press("Enter")  # leaves the input (does not submit)
        page.keyboard.press("3")  # the third reason: loose boundary
        assert not server.submitted.is_set()
        page.screenshot(path=str(artifacts / "audit-rejected-with-pins.png"))
        page.keyboard.press("Control+Enter")
        answer = server.wait(timeout=10)
    assert page.watch.errors == []
    assert answer is not None
    assert answer["approve"] == {"on": False}
    assert answer["reject"] == {"on": True}
    assert {k: v for k, v in answer.items() if k.startswith("reason-")} == {
        f"reason-{r.code}": {"on": r.code == "loose-boundary"} for r in REASONS
    }
    assert answer["comment"] == ""
    notes = json.loads(answer["region-notes"])
    assert [(n["n"], n["text"]) for n in notes] == [(1, ARM_NOTE), (2, "too wide")]
    assert notes[0]["x"] == pytest.approx(0.3, abs=0.01)
    assert notes[1]["y"] == pytest.approx(0.66, abs=0.01)
    assert set(answer) == {"approve", "reject", "comment", "region-notes"} | {f"reason-{r.code}" for r in REASONS}

    monkeypatch.setenv("ALLOWED_BUCKETS", bucket)
    monkeypatch.setenv("TASK_LANGUAGE", "en")
    post = importlib.reload(importlib.import_module("audit_post.app"))
    key = "out/audit-r1/annotations/consolidated-annotation/consolidation-request/iteration-1/2026-11-24_10:00:00.json"
    uri = consolidation_request(s3, bucket, key, f"s3://{bucket}/{OVERLAY_KEY}", answer)
    event = {
        "version": "2018-10-16",
        "labelingJobArn": "arn:aws:sagemaker:us-east-1:111122223333:labeling-job/gtaudit-audit-r1-x",
        "labelAttributeName": "audit-r1",
        "payload": {"s3Uri": uri},
    }
    [result] = post.lambda_handler(event, lambda_context)
    content = result["consolidatedAnnotation"]["content"]["audit-r1"]
    assert content["verdict"] == "reject"
    assert content["reasons"] == ["loose-boundary"]
    assert [n["text"] for n in content["notes"]] == [ARM_NOTE, "too wide"]


def test_rejection_without_reason_or_comment_is_refused(page: Any, s3: Any, images: str) -> None:
    with TaskPageServer.from_template(AUDIT, audit_input(images), s3_reader(s3)) as server:
        page.goto(server.url)
        page.keyboard.press("Control+Enter")  # no verdict yet
        assert page.locator("#gta-error").inner_text().startswith("Choose a verdict")
        page.keyboard.press("r")
        page.click("#gta-submit button")
        assert "at least one reason" in page.locator("#gta-error").inner_text()
        page.wait_for_timeout(300)
        assert not server.submitted.is_set()
        page.fill("crowd-text-area[name=comment] textarea", "the left edge is off")
        page.keyboard.press("Control+Enter")
        answer = server.wait(timeout=10)
    assert answer is not None
    assert answer["comment"] == "the left edge is off"
    assert answer["reject"] == {"on": True}
    assert json.loads(answer["region-notes"]) == []


def test_class_toggle_and_views(page: Any, s3: Any, images: str, artifacts: Path) -> None:
    with TaskPageServer.from_template(AUDIT, audit_input(images), s3_reader(s3)) as server:
        page.goto(server.url)
        page.wait_for_function("document.querySelector('.gta-class .pc').textContent !== ''")
        alpha = (
            "([x, y]) => document.getElementById('gta-mask-canvas').getContext('2d').getImageData(x, y, 1, 1).data[3]"
        )
        assert page.evaluate(alpha, [60, 50]) == 255
        box = page.locator("#gta-original").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 60 / 200, box["y"] + box["height"] * 50 / 150)
        assert page.locator("#gta-under").inner_text() == "▸ animal"
        page.click(".gta-class[data-index='2']")  # hide 'animal'
        page.wait_for_timeout(100)
        assert page.evaluate(alpha, [60, 50]) == 0
        assert page.evaluate(alpha, [150, 100]) == 255
        page.keyboard.press("m")
        assert page.get_attribute("#gta-original", "style") is not None
        assert page.evaluate("getComputedStyle(document.getElementById('gta-original')).visibility") == "hidden"
        page.screenshot(path=str(artifacts / "audit-mask-only-animal-hidden.png"))
        page.keyboard.press("o")
        assert page.evaluate("document.getElementById('gta-mask-canvas').hidden") is True
        assert not server.submitted.is_set()


def test_malicious_labels_and_comments_stay_inert(page: Any, s3: Any, images: str, artifacts: Path) -> None:
    bucket = images
    feedback = {
        "verdict": "reject",
        "reasons": ["loose-boundary", EVIL],
        "comment": EVIL,
        "notes": [{"n": EVIL, "x": EVIL, "y": 0.5, "text": EVIL}],
        "auditors": [EVIL],
    }
    seg = segmentation_input(
        bucket,
        labels=[EVIL, 'it\'s "quoted" & <b>bold</b>'],
        header=EVIL,
        shortInstructions=EVIL,
        fullInstructions=EVIL,
        objectId=EVIL,
        round=EVIL,
        feedback=feedback,
        initialValue={"labelMappings": {EVIL: {"color": PERSON}}, "src": f"s3://{bucket}/masks/{EVIL}.png"},
    )
    with TaskPageServer.from_template(SEGMENTATION, seg, s3_reader(s3)) as server:
        page.goto(server.url)
        page.wait_for_selector("crowd-semantic-segmentation[data-ready]")
        page.screenshot(path=str(artifacts / "malicious-segmentation.png"))
        assert page.evaluate("window.__pwned") is None
        assert page.locator(".css-label-name").all_text_contents() == [EVIL, 'it\'s "quoted" & <b>bold</b>']
        assert page.locator(".css-header").inner_text() == EVIL
        assert page.locator(".gta-peek").inner_text() == EVIL
        page.click("#gta-feedback summary")
        assert EVIL in page.locator(".gta-comment").inner_text()
        assert page.locator(".gta-notes li").inner_text() == EVIL + EVIL
        assert page.locator("img[src=x]").count() == 0
        page.click("crowd-button[form-action=submit] button")
        page.click("#gta-empty-submit")  # the previous mask did not load: nothing is painted
        answer = server.wait(timeout=10)
    assert answer is not None
    assert list(answer["crowd-semantic-segmentation"]["labelMappings"]) == [EVIL, 'it\'s "quoted" & <b>bold</b>']

    audit = audit_input(
        bucket,
        legend=[{"index": 1, "label": EVIL, "color": "red; background-image: url(http://127.0.0.1:9/x)"}],
        labelers=[EVIL],
        header=EVIL,
        instructions=EVIL,
        objectId=EVIL,
        agreement=EVIL,
        reasons=[{"code": EVIL, "text": EVIL}],
    )
    with TaskPageServer.from_template(AUDIT, audit, s3_reader(s3)) as server:
        page.goto(server.url)
        page.wait_for_timeout(300)
        page.screenshot(path=str(artifacts / "malicious-audit.png"))
        assert page.evaluate("window.__pwned") is None
        assert page.locator(".gta-class .nm").all_text_contents() == [EVIL]
        assert page.locator(".gta-top h1").inner_text() == EVIL
        assert page.evaluate("getComputedStyle(document.querySelector('.gta-class .sw')).backgroundImage") == "none"
        assert page.locator("img[src=x]").count() == 0
        page.keyboard.press("a")
        page.keyboard.press("Control+Enter")
        answer = server.wait(timeout=10)
    assert answer is not None
    assert answer[f"reason-{EVIL}"] == {"on": False}
    assert page.watch.dialogs == []
    assert page.watch.errors == []


def emulator_links(uri: str) -> str:
    """Links as the GT emulator's grant_read_access makes them (another port, signed query)."""
    bucket, key = uri[len("s3://") :].split("/", 1)
    return f"http://127.0.0.1:1/s3/{bucket}/{key}?X-Amz-Expires=9999999999&X-Amz-Signature=abc"


def test_browser_worker_serves_tasks_one_after_another(page: Any, s3: Any, images: str) -> None:
    from gtaudit_local.browser import BrowserWorker
    from gtaudit_local.liquid import render_task
    from gtaudit_local.workers.base import Task

    task_input = audit_input(images)
    html = render_task(AUDIT, task_input, emulator_links)
    task = Task("gtaudit-audit-r1-x", "audit", "0", {"source-ref": task_input["overlay"]}, task_input, html, 1)
    worker = BrowserWorker(announce=lambda line: None, timeout=30)
    results: list[Any] = []
    runner = threading.Thread(target=lambda: results.extend([worker.work(task, s3), worker.work(task, s3)]))
    runner.start()
    try:
        for _ in range(100):
            if worker.url:
                break
            time.sleep(0.05)
        page.goto(worker.url)
        # Same origin: the mask's pixels are readable, so the legend shows each class's share.
        page.wait_for_function("document.querySelector('.gta-class .pc').textContent !== ''")
        page.keyboard.press("a")
        page.keyboard.press("Control+Enter")
        # The same tab opens the second task by itself; this time the person releases it.
        page.wait_for_selector(".crowd-local-release", state="attached")
        page.wait_for_function("window.CROWD_LOCAL && window.CROWD_LOCAL.version === 3", timeout=10_000)
        page.click(".crowd-local-release")
        runner.join(timeout=20)
    finally:
        worker.close()
    first, second = results
    assert first.status == "submitted"
    assert first.content["approve"] == {"on": True}
    assert first.submitted_at >= first.accepted_at
    assert 0 <= first.active_seconds <= (first.submitted_at - first.accepted_at).total_seconds()
    assert second.status == "returned"
    assert second.content is None


def test_rework_starts_from_the_previous_mask_and_shows_the_feedback(
    page: Any, s3: Any, images: str, artifacts: Path
) -> None:
    bucket = images
    feedback = {
        "verdict": "reject",
        "reasons": ["loose-boundary", "extra-region"],
        "comment": "The box's right edge spills over; the bar is fine.",
        "notes": [{"n": 1, "x": 0.5, "y": 0.33, "text": ARM_NOTE}, {"n": 2, "x": 0.8, "y": 0.8, "text": "extra"}],
        "auditors": ["private.us-east-1.cccc"],
    }
    with TaskPageServer.from_template(SEGMENTATION, rework_input(bucket, feedback), s3_reader(s3)) as server:
        page.goto(server.url)
        page.wait_for_selector("crowd-semantic-segmentation[data-ready]")
        fb = page.locator("#gta-feedback")
        # Closed, the panel shows the reasons, the comment's first line and what opening it shows.
        assert fb.is_visible()
        assert "Loose boundary" in fb.inner_text()
        assert "Extra region" in fb.inner_text()
        assert page.locator(".gta-peek").is_visible()
        assert "Show the comment and the pinned notes (2)" in fb.inner_text()
        assert not page.locator(".gta-notes").is_visible()
        page.click("#gta-feedback summary")
        assert page.locator(".gta-comment").inner_text() == feedback["comment"]
        assert page.locator(".gta-notes").is_visible()
        assert page.locator("#gta-feedback .gta-pin").all_text_contents() == ["1", "2"]
        assert page.locator(".gta-notes li").all_text_contents() == [f"1{ARM_NOTE}", "2extra"]
        # The previous mask is loaded into the editor, class by class.
        assert page.evaluate("document.querySelector('crowd-semantic-segmentation').map[50 * 200 + 60]") == 2
        page.screenshot(path=str(artifacts / "segmentation-rework.png"))
        left, top, zoom = image_origin(page)
        page.keyboard.press("e")  # eraser over the box's right part
        page.mouse.move(left + 95 * zoom, top + 25 * zoom)
        page.mouse.down()
        page.mouse.move(left + 95 * zoom, top + 75 * zoom, steps=8)
        page.mouse.up()
        page.click("crowd-button[form-action=submit] button")
        answer = server.wait(timeout=10)
    assert answer is not None
    seg = answer["crowd-semantic-segmentation"]
    assert seg["initialValueModified"] is True
    painted = Image.open(io.BytesIO(base64.b64decode(seg["labeledImage"]["pngImageData"])))
    assert painted.getpixel((95, 50))[3] == 0  # erased
    assert painted.getpixel((40, 50)) == (0x1F, 0x77, 0xB4, 255)  # kept from the previous mask
    assert painted.getpixel((150, 100)) == (0x2C, 0xA0, 0x2C, 255)


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "ui" / "examples").glob("*.json")))
def test_example_inputs_render(page: Any, artifacts: Path, example: str) -> None:
    """The `gtaudit preview` examples of docs/local-runtime.md (English and Japanese) on the committed sample images."""
    from gtaudit_local.preview import folder_reader, load_task_input

    task = load_task_input(json.loads((ROOT / "ui" / "examples" / example).read_text(encoding="utf-8")))
    template = AUDIT if example.startswith("audit") else SEGMENTATION
    with TaskPageServer.from_template(template, task, folder_reader(ROOT)) as server:
        page.goto(server.url)
        if template is AUDIT:
            page.wait_for_function("document.querySelector('.gta-class .pc').textContent !== ''")
        else:
            page.wait_for_selector("crowd-semantic-segmentation[data-ready]")
            assert "could not be loaded" not in page.locator(".css-status").inner_text()
        page.screenshot(path=str(artifacts / f"example-{example.removesuffix('.json')}.png"))
    assert page.watch.errors == []


def test_cross_origin_mask_without_cors_falls_back_to_the_overlay(page: Any, s3: Any, images: str) -> None:
    """GT serves presigned S3 URLs: without a CORS rule the mask cannot be read, and the page says so."""
    other = TaskPageServer(s3_reader(s3)).start()  # another origin, no CORS headers
    try:
        task = audit_input(images)
        # A link the other server signed, so it serves the mask: only the missing CORS rule stops the page.
        task["mask"] = other.url.rstrip("/") + other.link_for(task["mask"])
        with TaskPageServer.from_template(AUDIT, task, s3_reader(s3)) as server:
            page.goto(server.url)
            page.wait_for_function("document.getElementById('gta-legend-note').textContent !== ''")
            assert "CORS" in page.locator("#gta-legend-note").inner_text()
            assert page.locator(".gta-class").first.is_disabled()
            assert page.evaluate("document.getElementById('gta-overlay').hidden") is False
            page.keyboard.press("m")
            assert page.evaluate("document.getElementById('gta-mask').hidden") is False
            page.keyboard.press("a")
            page.keyboard.press("Control+Enter")
            assert server.wait(timeout=10) is not None
    finally:
        other.close()


def test_undo_redo_and_eraser(page: Any, s3: Any, images: str) -> None:
    with TaskPageServer.from_template(SEGMENTATION, segmentation_input(images), s3_reader(s3)) as server:
        page.goto(server.url)
        page.wait_for_selector("crowd-semantic-segmentation[data-ready]")
        left, top, zoom = image_origin(page)
        count = "() => document.querySelector('crowd-semantic-segmentation').map.reduce((a, v) => a + (v ? 1 : 0), 0)"
        page.mouse.click(left + 50 * zoom, top + 50 * zoom)  # one brush dab, 12 px wide
        dab = page.evaluate(count)
        assert 90 <= dab <= 130
        page.keyboard.press("Control+z")
        assert page.evaluate(count) == 0
        page.keyboard.press("Control+y")
        assert page.evaluate(count) == dab
        page.keyboard.press("e")
        page.mouse.click(left + 50 * zoom, top + 50 * zoom)
        assert page.evaluate(count) == 0
        assert not server.submitted.is_set()


CROWD_PAGE = """<script src="https://assets.crowd.aws/crowd-html-elements.js"></script>
<crowd-form>
  <crowd-instructions link-text="View instructions">
    <short-summary><p id="summary">Be careful</p></short-summary>
    <detailed-instructions><p>Details</p></detailed-instructions>
  </crowd-instructions>
  <crowd-alert type="warning" dismissible>Heads up</crowd-alert>
  <crowd-checkbox name="image_attributes" value="blurry" checked>Blurry</crowd-checkbox>
  <crowd-checkbox name="image_attributes" value="dim">Too dim</crowd-checkbox>
  <crowd-checkbox name="Stop" value="Red">Red</crowd-checkbox>
  <crowd-checkbox name="plain">No value attribute</crowd-checkbox>
  <crowd-radio-group>
    <crowd-radio-button name="btn1" value="yes">Yes</crowd-radio-button>
    <crowd-radio-button name="btn2" value="no" checked>No</crowd-radio-button>
  </crowd-radio-group>
  <crowd-slider name="howMuch" min="0" max="10" step="1" value="3" pin></crowd-slider>
  <crowd-text-area name="notes" label="Notes" char-counter max-length="50"></crowd-text-area>
  <input type="hidden" name="hidden" value="h">
  <input type="text" value="unnamed">
</crowd-form>"""


def test_crowd_elements_answer_in_the_reference_shapes(page: Any) -> None:
    """The element reference's own examples: one object per name, values merged under a shared name."""
    server = TaskPageServer(lambda bucket, key: None).start()
    try:
        server.show(CROWD_PAGE)
        page.goto(server.url)
        page.click("crowd-instructions button")
        assert page.locator("#summary").is_visible()
        page.keyboard.press("Escape")
        page.click("crowd-checkbox[name=Stop] input")
        page.click("crowd-radio-button[name=btn1] input")  # unchecks btn2: same group
        page.fill("crowd-slider input", "7")
        page.fill("crowd-text-area textarea", "ok")
        page.click("crowd-form crowd-button[form-action=submit] button")  # appended by crowd-form
        answer = server.wait(timeout=10)
    finally:
        server.close()
    assert answer == {
        "image_attributes": {"blurry": True, "dim": False},
        "Stop": {"Red": True},
        "plain": {"on": False},
        "btn1": {"yes": True},
        "btn2": {"no": False},
        "howMuch": 7,
        "notes": "ok",
        "hidden": "h",
    }
