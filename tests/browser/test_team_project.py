"""Three people run a project through the browser, and the project survives SIGKILL at several points.

``gtaudit demo --workers team`` serves two labelers and an auditor (each signed in with their own
link, in a browser of their own). The test kills the whole process with SIGKILL mid-labeling,
mid-audit and mid-rework, starts the same command on the same folder (new port, so new links, as
people would get them again), signs everyone in again and works on until the run ends. Then: every submitted answer
is in Ground Truth's layout once, nobody answered an object twice or audited their own labels, no
stage ran twice, and objects in = approved + needing attention + failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from browser.task_pages import give_verdict, paint_middle_and_submit
from playwright.sync_api import Error as PlaywrightError
from support import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser-demo")]

IMAGES = ("coffee.jpg", "rocket.jpg", "astronaut.jpg", "chelsea.jpg")
PEOPLE = "ana:labeler,ben:labeler,cho:auditor"
LINK = re.compile(r"^\s+(\w+) \((\w+)\): (http://127\.0\.0\.1:\d+/signin\?t=\S+)\s*$")
BUCKET = "gtaudit-databucket"


class Session:
    """One start of the project: the process, its output, the people's links and pages."""

    def __init__(self, chromium: Any, out: Path, images: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        command = ["demo", "--workers", "team", "--people", PEOPLE, "--images", str(images), "--out", str(out)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gtaudit_local.cli", *command, "--timeout", "600"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 120
        while len(self.links) < 3:
            assert time.monotonic() < deadline and self.proc.poll() is None, "".join(self.lines[-40:])
            time.sleep(0.1)
        self.contexts = []
        self.pages: dict[str, Any] = {}
        for name, link in self.links.items():
            context = chromium.new_context(viewport={"width": 1366, "height": 900})
            self.contexts.append(context)
            page = context.new_page()
            page.goto(link)
            page.wait_for_url("**/")
            self.pages[name] = page

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def links(self) -> dict[str, str]:
        return {m.group(1): m.group(3) for line in list(self.lines) if (m := LINK.match(line))}

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def _take(page: Any, proc: subprocess.Popen[str]) -> bool:
    """Press Start on the home page; True if a task opened, False if there is nothing for this
    person (or the run ended: its server closes before the process exits)."""
    home = page.url.split("/task")[0].rstrip("/") + "/"
    for attempt in range(10):
        try:
            page.goto(home)
            break
        except PlaywrightError as exc:  # the page was navigating by itself (its heartbeat, a reload)
            transient = any(code in str(exc) for code in ("ERR_ABORTED", "ERR_CONNECTION_RESET"))
            if not transient or attempt == 9:
                raise
            page.wait_for_timeout(300)
    page.click("#start")
    deadline = time.monotonic() + 60
    while proc.poll() is None:
        with contextlib.suppress(PlaywrightError):  # navigating to the task
            if page.url.endswith("/task"):
                return True
            status = page.evaluate("() => (document.getElementById('status') || {}).textContent || ''")
            if str(status).startswith("Nothing"):
                return False
        assert time.monotonic() < deadline, "Start neither opened a task nor said there is nothing"
        time.sleep(0.2)
    return False


def _paint(page: Any) -> None:
    page.wait_for_selector("crowd-semantic-segmentation[data-ready]", timeout=30_000)
    paint_middle_and_submit(page)


def _settled(page: Any, proc: subprocess.Popen[str]) -> None:
    """Wait until the crowd form says the answer was accepted (``data-crowd-submit="sent"``), the
    page went home, or the run ended (its server closes before the last answer's page hears back)."""
    deadline = time.monotonic() + 60
    while proc.poll() is None:
        with contextlib.suppress(PlaywrightError):  # the page may be navigating home
            if (
                page.url.endswith("/")
                or page.evaluate("() => document.documentElement.getAttribute('data-crowd-submit')") == "sent"
            ):
                return
        assert time.monotonic() < deadline, f"{page.url}: the answer was not accepted"
        time.sleep(0.2)


def _audit(page: Any, *, reject: bool) -> None:
    page.wait_for_function(
        "(() => { const e = document.querySelector('.gta-class .pc'); return !!e && e.textContent !== ''; })()",
        timeout=30_000,
    )
    give_verdict(page, reject=reject)


@pytest.mark.slow
def test_three_people_and_three_kills_lose_nothing_and_do_nothing_twice(chromium: Any, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in IMAGES:
        shutil.copy(ROOT / "samples" / "images" / name, images / name)
    out = tmp_path / "project"
    done: Counter[str] = Counter()
    answered_by: Counter[str] = Counter()  # submits each person saw accepted
    # (what was submitted, how many) before each SIGKILL: mid-labeling, mid-audit, mid-rework
    kill_after = [("labeling", 2), ("audit", 1), ("rework", 1)]
    session = Session(chromium, out, images)
    rejected = False
    deadline = time.monotonic() + 900
    try:
        while session.proc.poll() is None:
            assert time.monotonic() < deadline, "".join(session.lines[-40:])
            worked = False
            for name, page in session.pages.items():
                try:
                    took = session.proc.poll() is None and _take(page, session.proc)
                except PlaywrightError as exc:
                    if not any(code in str(exc) for code in ("ERR_CONNECTION_REFUSED", "ERR_CONNECTION_RESET")):
                        raise
                    # The run ended: its server closes first, then the process writes its summary.
                    session.proc.wait(timeout=120)
                    break
                if not took:
                    continue
                worked = True
                if name == "cho":
                    _audit(page, reject=not rejected)
                    rejected = True
                    done["audit"] += 1
                else:
                    stage = "rework" if "rework" in (page.text_content("#gtaudit-team-bar") or "") else "labeling"
                    _paint(page)
                    done[stage] += 1
                _settled(page, session.proc)
                answered_by[name] += 1
                if kill_after and done[kill_after[0][0]] >= kill_after[0][1]:
                    kill_after.pop(0)
                    session.proc.kill()  # SIGKILL: no clean-up of any kind
                    session.proc.wait(timeout=30)
                    session.close()
                    session = Session(chromium, out, images)
                    assert any("resuming it" in line for line in session.lines), "".join(session.lines[-20:])
                    break
            if not worked:
                time.sleep(0.5)
        assert session.proc.wait(timeout=60) == 0, "".join(session.lines[-40:])
    except Exception:
        for name, page in session.pages.items():
            with contextlib.suppress(PlaywrightError):
                page.screenshot(path=str(tmp_path / f"failed-{name}.png"))
        print("".join(session.lines[-60:]), done, kill_after)
        raise
    finally:
        if session.proc.poll() is None:
            session.proc.kill()
        session.close()
    assert not kill_after, f"the run ended before every kill landed: {kill_after}"

    summary = json.loads((out / "summary.json").read_text())
    counts = summary["counts"]
    assert summary["finished"] and summary["resumed"] and counts["adds-up"], counts
    assert counts["objects-in"] == len(IMAGES) == counts["approved"] + counts["needing-attention"] + counts["failed"]
    assert set(Counter((j["kind"], j["round"]) for j in summary["jobs"]).values()) == {1}
    assert any(j["kind"] == "rework" for j in summary["jobs"])  # the rejected object came back
    bucket = out / "bucket" / BUCKET
    team = json.loads((out / "team.json").read_text())
    assert {p["name"] for p in team["people"]} == {"ana", "ben", "cho"}
    person_of = {p["worker_id"]: p["name"] for p in team["people"]}
    in_files: Counter[str] = Counter()
    for job in summary["jobs"]:
        root = bucket / "jobs" / job["name"]
        labelers = {}
        if job["kind"] == "audit":
            manifest = bucket / "runs" / summary["run"] / "manifests" / f"r{job['round']}" / "audit.manifest"
            for i, raw in enumerate(manifest.read_text(encoding="utf-8").splitlines()):
                labelers[str(i)] = set(json.loads(raw)["gtaudit"]["labelers"])
        files = sorted((root / "annotations" / "worker-response" / "iteration-1").glob("*/*.json"))
        assert len({f.parent.name for f in files}) == len(files) == job["objects"], job["name"]
        for f in files:
            (answer,) = json.loads(f.read_text())["answers"]  # one worker per object, answered once
            in_files[person_of[answer["workerId"]]] += 1
            if job["kind"] == "audit":
                assert answer["workerId"] not in labelers[f.parent.name], "someone audited their own labels"
    # Every answer a person saw accepted is on disk in their name, kills or not, and no other.
    assert in_files == answered_by, (in_files, answered_by)
