"""The preview/page server over real HTTP on 127.0.0.1: page, assets, objects, versioned submits."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from gtaudit.preview import TaskPageServer, folder_reader

ROOT = Path(__file__).resolve().parents[2]
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
