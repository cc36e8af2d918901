"""Headless Chromium (Debian's, driven by Playwright) for the worker UI tests.

`make test` installs /usr/bin/chromium (target `chromium`); Playwright's own browser download
cannot work here. Screenshots go to test-artifacts/ (gitignored) for a person to judge.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser.task_pages import MASK_KEY, OVERLAY_KEY, PHOTO_KEY, indexed_mask, photo, png
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One Chromium for the session."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent: run `make chromium` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageWatch:
    """Script errors and dialogs seen on a page (a dialog means some injected script ran)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh page (1400x900) with ``page.watch`` recording script errors and dialogs."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    watch = PageWatch()
    pg.on("pageerror", lambda exc: watch.errors.append(str(exc)))

    def on_dialog(dialog: Any) -> None:
        watch.dialogs.append(dialog.message)
        dialog.dismiss()

    pg.on("dialog", on_dialog)
    pg.watch = watch
    yield pg
    context.close()


@pytest.fixture
def artifacts() -> Path:
    """The screenshot folder."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def images(s3: Any, bucket: str) -> str:
    """The photo, its overlay and its mask (``browser.task_pages``) in moto's S3; returns the bucket."""
    s3.put_object(Bucket=bucket, Key=PHOTO_KEY, Body=png(photo()))
    jpg = io.BytesIO()
    Image.blend(photo(), indexed_mask().convert("RGB"), 0.5).save(jpg, format="JPEG")
    s3.put_object(Bucket=bucket, Key=OVERLAY_KEY, Body=jpg.getvalue())
    s3.put_object(Bucket=bucket, Key=MASK_KEY, Body=png(indexed_mask()))
    return bucket
