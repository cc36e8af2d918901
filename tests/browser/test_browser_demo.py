"""`gtaudit demo --workers browser` end to end, with Playwright in the person's seat.

The person shares each team with one scripted worker (nobody audits their own labels): the person
labels the first photo, audits the second (which the scripted labeler painted) and rejects it with
a pin and a reason, then reworks it from the previous mask; the scripted auditor approves the
person's labels. Every answer goes through the same Lambdas, events and orchestrator as the
scripted demo, and the run ends with both objects approved.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from browser.task_pages import give_verdict, paint_middle_and_submit
from support import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-demo")]

URL = re.compile(r"task waiting for you at (http://127\.0\.0\.1:\d+/\S*)")


def _watch_stderr(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append(line)


def _version(page: Any) -> int:
    """The version of the page the tab shows; 0 while it is navigating to the next one."""
    from playwright.sync_api import Error

    try:
        return int(page.evaluate("() => (window.CROWD_LOCAL && window.CROWD_LOCAL.version) || 0"))
    except Error:  # the waiting page reloaded itself into the next task mid-call
        return 0


def _next_task(page: Any, proc: subprocess.Popen[str], seen: int) -> str | None:
    """Wait until the tab shows a task newer than version ``seen``; return its kind, None when the demo ended."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        if _version(page) > seen:
            if page.locator("crowd-semantic-segmentation").count():
                page.wait_for_selector("crowd-semantic-segmentation[data-ready]", timeout=30_000)
                return "segmentation"
            if page.locator("#gta-original").count():
                page.wait_for_function("document.querySelector('.gta-class .pc').textContent !== ''")
                return "audit"
        page.wait_for_timeout(250)
    raise AssertionError("no task came within 120 s")


def test_a_person_works_the_whole_loop_in_the_browser(page: Any, tmp_path: Path, artifacts: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("coffee.jpg", "rocket.jpg"):
        shutil.copy(ROOT / "samples" / "images" / name, images / name)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    command = ["demo", "--workers", "browser", "--images", str(images), "--out", str(out), "--timeout", "300"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gtaudit_local.cli", *command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=_watch_stderr, args=(proc, lines), daemon=True).start()
    try:
        url = None
        for _ in range(600):
            found = [m.group(1) for line in lines if (m := URL.search(line))]
            if found:
                url = found[0]
                break
            assert proc.poll() is None, "".join(lines)
            time.sleep(0.1)
        assert url, "the demo never announced a task URL"
        page.goto(url)
        done: list[str] = []
        version = 0
        while (kind := _next_task(page, proc, version)) is not None:
            version = _version(page)
            if kind == "segmentation":
                paint_middle_and_submit(page)
            else:
                # The person's first audit rejects; a later one (there is none) would approve.
                give_verdict(page, reject="audit" not in done)
                if "audit" not in done:
                    page.screenshot(path=str(artifacts / "browser-demo-reject.png"))
            done.append(kind)
        assert proc.wait(timeout=60) == 0, "".join(lines[-30:])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the person labels coffee, audits rocket (labeled by the scripted labeler), reworks rocket; the
    # scripted auditor audits coffee (the person's) and the reworked rocket (the person's again)
    assert done == ["segmentation", "audit", "segmentation"]
    summary = json.loads((out / "summary.json").read_text())
    kinds = [(j["kind"], j["round"], j["status"]) for j in summary["jobs"]]
    assert kinds == [
        ("labeling", 1, "Completed"),
        ("audit", 1, "Completed"),
        ("rework", 2, "Completed"),
        ("audit", 2, "Completed"),
    ]
    counts = summary["counts"]
    assert counts["objects-in"] == 2 and counts["approved"] == 2 and counts["adds-up"], counts
