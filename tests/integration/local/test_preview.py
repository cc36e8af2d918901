"""The preview/page server over real HTTP on 127.0.0.1: page, assets, objects, versioned submits."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from gtaudit_local.preview import TaskPageServer, folder_reader

ROOT = Path(__file__).resolve().parents[3]
AUDIT = (ROOT / "ui" / "audit.liquid.html").read_text(encoding="utf-8")


def test_preview_server_serves_the_page_and_takes_one_answer() -> None:
    task = json.loads((ROOT / "ui" / "examples" / "audit-input.json").read_text(encoding="utf-8"))
    with TaskPageServer.from_template(AUDIT, task, folder_reader(ROOT)) as server:
        page = urllib.request.urlopen(server.url, timeout=5).read().decode()
        assert "/_crowd/crowd-elements.js" in page
        img = urllib.request.urlopen(server.url + "s3/gtaudit-examples/samples/images/astronaut.jpg", timeout=5)
        assert img.headers["Content-Type"] == "image/jpeg"
        body = json.dumps({"approve": {"on": True}}).encode()
        stale = urllib.request.Request(server.url + "submit?v=99", data=body, method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(stale, timeout=5)
        assert err.value.code == 409
        req = urllib.request.Request(
            server.url + "submit?v=1", data=body, method="POST", headers={"X-Gtaudit-Active-Seconds": "12"}
        )
        assert urllib.request.urlopen(req, timeout=5).status == 200
        result = server.wait_submission(timeout=5)
    assert result is not None
    assert result.answer == {"approve": {"on": True}}
    assert result.active_seconds == 12.0


def test_cli_preview_prints_the_submitted_answer_and_exits_with_once() -> None:
    import re
    import subprocess
    import sys

    args = ["preview", "ui/audit.liquid.html", "--input", "events/audit_pre-task.json", "--once"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gtaudit_local.cli", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
        assert match, line
        page = urllib.request.urlopen(match.group(1), timeout=5).read().decode()
        assert "street-1a2b3c4d" in page  # audit_pre turned the event into the task input
        body = json.dumps({"approve": {"on": True}, "reject": {"on": False}}).encode()
        urllib.request.urlopen(urllib.request.Request(match.group(1) + "submit?v=1", data=body), timeout=5)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert json.loads(out) == {"approve": {"on": True}, "reject": {"on": False}}
