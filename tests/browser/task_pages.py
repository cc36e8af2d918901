"""What the browser tests render and drive: the two templates, a synthetic photo and mask, task inputs.

A module of its own (``from browser.task_pages import ...``) so that each test file of this
folder builds its pages the same way; the ``images`` fixture that puts them in moto's S3 is in
conftest.py.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from gtaudit.reasons import reason_inputs
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
SEGMENTATION = (ROOT / "ui" / "segmentation.liquid.html").read_text(encoding="utf-8")
AUDIT = (ROOT / "ui" / "audit.liquid.html").read_text(encoding="utf-8")
PERSON, ANIMAL = "#2ca02c", "#1f77b4"
PHOTO_KEY = "images/x.png"
OVERLAY_KEY = "out/job/overlays/0.jpg"
MASK_KEY = "out/job/annotations/consolidated-annotation/output/0_2026-11-24T100000.png"


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def photo(w: int = 200, h: int = 150) -> Image.Image:
    """A synthetic photo: a grey gradient with a dark box (the 'animal') and a bar (the 'person')."""
    img = Image.new("RGB", (w, h))
    img.putdata([(90 + x // 4, 110 + y // 4, 130) for y in range(h) for x in range(w)])
    d = ImageDraw.Draw(img)
    d.rectangle([20, 20, 99, 79], fill=(60, 40, 30))
    d.rectangle([130, 95, 180, 105], fill=(230, 200, 160))
    return img


def indexed_mask(w: int = 200, h: int = 150) -> Image.Image:
    """A P-mode mask in GT's colour-map convention: 0 white, 1 person, 2 animal."""
    m = Image.new("P", (w, h), 0)
    m.putpalette([255, 255, 255, 0x2C, 0xA0, 0x2C, 0x1F, 0x77, 0xB4] + [0] * (256 * 3 - 9))
    d = ImageDraw.Draw(m)
    d.rectangle([20, 20, 99, 79], fill=2)  # 80 x 60 = 4800 px animal
    d.rectangle([130, 95, 179, 104], fill=1)  # 50 x 10 = 500 px person
    return m


def segmentation_input(bucket: str, **extra: Any) -> dict[str, Any]:
    task = {
        "taskObject": f"s3://{bucket}/{PHOTO_KEY}",
        "objectId": "x-1a2b3c4d",
        "round": 1,
        "labels": ["person", "animal"],
        "labelColors": [{"label": "person", "color": PERSON}, {"label": "animal", "color": ANIMAL}],
        "language": "en",
        "header": "Paint every person and animal",
        "shortInstructions": "Pick a label, then paint.",
        "fullInstructions": "1. Pick a label.\n2. Paint.",
        "initialValue": None,
        "feedback": None,
    }
    task.update(extra)
    return task


def rework_input(bucket: str, feedback: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A round-2 task that starts from ``indexed_mask`` with the auditor's ``feedback``."""
    initial = {
        "labelMappings": {"person": {"color": PERSON}, "animal": {"color": ANIMAL}},
        "src": f"s3://{bucket}/{MASK_KEY}",
    }
    return segmentation_input(bucket, round=2, initialValue=initial, feedback=feedback, **extra)


def audit_input(bucket: str, **extra: Any) -> dict[str, Any]:
    task = {
        "objectId": "x-1a2b3c4d",
        "round": 1,
        "original": f"s3://{bucket}/{PHOTO_KEY}",
        "overlay": f"s3://{bucket}/{OVERLAY_KEY}",
        "mask": f"s3://{bucket}/{MASK_KEY}",
        "legend": [{"index": 1, "label": "person", "color": PERSON}, {"index": 2, "label": "animal", "color": ANIMAL}],
        "labelers": ["private.us-east-1.aaaa", "private.us-east-1.bbbb"],
        "agreement": 0.91,
        "reasons": reason_inputs("en"),
        "language": "en",
        "header": "Audit this segmentation",
        "instructions": "Approve, or reject with reasons.",
    }
    task.update(extra)
    return task


def image_origin(page: Any) -> tuple[float, float, float]:
    """Screen position of image pixel (0, 0) and the zoom of the segmentation viewport."""
    left, top, zoom = page.evaluate(
        "() => { const e = document.querySelector('crowd-semantic-segmentation');"
        " const r = e.vp.getBoundingClientRect(); return [r.left + e.tx, r.top + e.ty, e.zoom]; }"
    )
    return left, top, zoom


def paint_middle_and_submit(page: Any) -> None:
    """Paint a polygon of the first label over the middle of the photo, then submit."""
    left, top, zoom = image_origin(page)
    w, h = page.evaluate(
        "() => { const e = document.querySelector('crowd-semantic-segmentation'); return [e.W, e.H]; }"
    )
    page.keyboard.press("1")
    page.keyboard.press("p")
    for fx, fy in [(0.3, 0.3), (0.7, 0.3), (0.7, 0.7), (0.3, 0.7), (0.3, 0.3)]:
        page.mouse.click(left + fx * w * zoom, top + fy * h * zoom)
    page.click("crowd-button[form-action=submit] button")


def give_verdict(page: Any, *, reject: bool) -> None:
    """Approve, or reject with a pin in the middle, a note and "loose boundary"; then submit."""
    if reject:
        page.keyboard.press("r")
        box = page.locator("#gta-original").bounding_box()
        page.mouse.click(box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"])
        page.keyboard.type("paint the whole object")
        page.keyboard.press("Enter")
        page.keyboard.press("3")  # loose boundary
    else:
        page.keyboard.press("a")
    page.keyboard.press("Control+Enter")
