"""``gtaudit start --from`` on moto with a fake Ground Truth: what it prints, and its exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from gtaudit_local.cli import main
from pipeline_fakes import FakeSageMaker, pipeline_table
from support import ROOT, orchestrator_env

RUN = "20261124t100000-ab12"
SAMPLES = ROOT / "samples"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools on numpy 2


@pytest.fixture
def fake_gt(monkeypatch: pytest.MonkeyPatch, s3: Any, bucket: str) -> FakeSageMaker:
    for k, v in orchestrator_env(bucket, "pipeline").items():
        monkeypatch.setenv(k, v)
    pipeline_table(boto3.resource("dynamodb", region_name="us-east-1"))
    fake = FakeSageMaker()
    real = boto3.client
    monkeypatch.setattr(
        boto3, "client", lambda service, *a, **kw: fake if service == "sagemaker" else real(service, *a, **kw)
    )
    return fake


def test_start_from_a_coco_file_prints_the_run_and_each_refused_object(
    fake_gt: FakeSageMaker, s3: Any, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["start", "--from", str(SAMPLES / "imports" / "coco.json"), "--images", str(SAMPLES / "images")]
    assert main([*argv, "--run-id", RUN]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert (out["run"], out["job"], out["objects"], out["imported"]) == (RUN, f"gtaudit-audit-r1-{RUN}", 9, 5)
    assert {r["object"] for r in out["refused"]} == {"chelsea-exif6", "clock", "lighthouse", "image-404"}
    errors = captured.err.splitlines()
    assert any(e.startswith("gtaudit start: refused chelsea-exif6: orientation: ") for e in errors)
    assert fake_gt.created == [out["job"]]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"inputs/{RUN}/images/")["Contents"]}
    assert keys == {f"inputs/{RUN}/images/{n}.jpg" for n in ("astronaut", "camera", "chelsea", "coffee", "rocket")}


def test_start_from_a_source_where_nothing_can_be_imported_exits_2_and_starts_nothing(
    fake_gt: FakeSageMaker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "out.manifest"
    manifest.write_text('{"source-ref": "a.jpg"}\nnot json\n', encoding="utf-8")
    assert main(["start", "--from", str(manifest), "--run-id", RUN]) == 2
    err = capsys.readouterr().err
    assert "refused a: line 1: no mask" in err and "refused line-2: line 2: not JSON" in err
    assert "no object could be imported; no run was started" in err
    assert fake_gt.created == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["start"], "gtaudit: error: give --images (a labeling run) or --from (an audit of existing labels)"),
        (["start", "--from", "nothing-here.json"], "gtaudit start: --from not found: nothing-here.json"),
    ],
)
def test_start_without_a_source_or_with_a_missing_one_exits_2(
    fake_gt: FakeSageMaker, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert fake_gt.created == []
