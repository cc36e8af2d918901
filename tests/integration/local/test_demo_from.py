"""``gtaudit demo --from``: audit-only runs on the local runtime, from the sample deliveries.

Each sample (``samples/imports/``: a COCO file and a Ground Truth built-in output manifest, made
by ``samples/make_imports.py``) holds good labels, one delivered mask the scripted auditor sends
back, and four faults. The run must start at the audit, refuse each fault with its reason, rework
the sent-back object from its delivered mask, and end with every object accounted for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gtaudit_local.demo import run_demo
from support import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("local-runtime-demo-from"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # pycocotools on numpy 2
]
SAMPLES = ROOT / "samples" / "imports"
CASES = {
    "coco": (
        SAMPLES / "coco.json",
        {
            "chelsea-exif6": "orientation: the mask is 300x451, the image's stored size",
            "clock": "class 'unicorn' is not in the run's label set",
            "lighthouse": "image not found: ",
            "image-404": "annotation 15 names image_id 404, which coco.json does not list",
        },
        "rocket",  # delivered without the rocket itself: sent back
    ),
    "groundtruth": (
        SAMPLES / "groundtruth.manifest",
        {
            "clock": "line 6: no mask: Ground Truth's failure-reason: ClientError: the task expired",
            "coffee": "line 7: colour #123456 (1200 pixels) is not in the colour map",
            "camera": "size: the mask is 256x256, the image is displayed as 512x512",
            "line-9": "line 9: not JSON",
        },
        "coins",  # delivered as "animal": sent back
    ),
}


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_audit_only_run_completes_with_every_object_accounted_for(tmp_path: Path, case: str) -> None:
    source, refused, sent_back = CASES[case]
    out = tmp_path / "out"
    result = run_demo(out, source=str(source), project=ROOT, log=lambda _line: None)
    s = result.summary
    c = s["counts"]

    assert result.finished and c["adds-up"] and c.get("pipeline-agrees") is True, s.get("stuck")
    assert c["objects-in"] == 9 and c["approved"] + c["needing-attention"] == 5 and c["failed"] == 4
    assert s["jobs"][0]["kind"] == "audit" and s["jobs"][0]["round"] == 1  # no labeling job: it starts at the audit
    assert all(j["status"] == "Completed" for j in s["jobs"])
    for name, reason in refused.items():
        state = s["objects"][name]
        assert state["state"] == "failed" and state["reason"].startswith(reason), (name, state)
    pipeline = s["pipeline-summary"]
    assert pipeline["balanced"] is True and pipeline["import"]["refused"] == 4

    # The sent-back object is reworked from the delivered mask: the rework's initial-value.
    run = out / "bucket" / s["bucket"] / "runs" / s["run"]
    (audit1,) = [x for x in lines(run / "manifests" / "r1" / "audit.manifest") if x["object-id"] == sent_back]
    delivered = audit1["gtaudit"]["mask"]
    assert (
        "/jobs/gtaudit-import-" in delivered and (out / "bucket" / s["bucket"] / delivered.split("/", 3)[3]).is_file()
    )
    (rework,) = [x for x in lines(run / "manifests" / "r2" / "rework.manifest") if x["object-id"] == sent_back]
    assert rework["gtaudit"]["previous-mask"] == delivered
    assert rework["gtaudit"]["feedback"]["verdict"] == "reject"
    failed = {x["object-id"]: x["gtaudit"]["reason"] for x in lines(run / "failed.manifest")}
    assert set(refused) <= set(failed)
