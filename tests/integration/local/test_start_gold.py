"""``gtaudit start --gold`` on moto with a fake Ground Truth: what it prints, what it refuses, its exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gtaudit.gold import load_index
from gtaudit_local.cli import main
from integration.local import test_start_from
from PIL import Image
from pipeline_fakes import FakeSageMaker

RUN = "20261124t100000-ab12"
fake_gt = test_start_from.fake_gt  # the fixture: the orchestrator's environment on moto, a fake Ground Truth


def folders(tmp_path: Path) -> tuple[Path, Path]:
    """Nine images of the run, and a gold folder of three good objects and one whose mask is too small."""
    images, gold = tmp_path / "photos", tmp_path / "gold"
    for i in range(9):
        (images / f"photo{i}.png").parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 6)).save(images / f"photo{i}.png")
    (gold / "images").mkdir(parents=True)
    (gold / "masks").mkdir()
    truth = np.zeros((6, 8), dtype=np.uint8)
    truth[1:4, 2:6] = 1
    for name in ("field", "harbour", "market", "tiny"):
        Image.new("RGB", (8, 6)).save(gold / "images" / f"{name}.jpg")
        Image.fromarray(truth if name != "tiny" else truth[:4, :4], "L").save(gold / "masks" / f"{name}.png")
    return images, gold


def test_start_with_gold_prints_the_gold_taken_and_each_refused_object(
    fake_gt: FakeSageMaker, s3: Any, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images, gold = folders(tmp_path)
    argv = ["start", "--images", str(images), "--gold", str(gold), "--gold-share", "0.25", "--seed-share", "0.1"]
    assert main([*argv, "--run-id", RUN]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    # 0.25 / 0.75 of 9 objects: 3 gold lines (all the usable gold); 0.1 / 0.9 of 9 audited: 1 seeded
    assert (out["objects"], out["gold"], out["seeded"]) == (9, 3, 1)
    assert out["gold_refused"] == [
        {"name": "tiny.jpg", "reason": "size: the mask is 4x4, the image is displayed as 8x6"}
    ]
    assert "gtaudit start: gold refused tiny.jpg: size: the mask is 4x4" in captured.err
    index = load_index(s3, bucket, RUN)
    assert index is not None and len(index.entries) == 3
    body = s3.get_object(Bucket=bucket, Key=f"runs/{RUN}/manifests/r1/labeling.manifest")["Body"].read()
    assert len(body.splitlines()) == 12
    assert fake_gt.created == [out["job"]]


def exit_code(argv: list[str]) -> int:
    """What the process would exit with: ``main``'s code, or argparse's for a bad option."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--gold", "nowhere"], "gtaudit start: gold source not found: nowhere"),
        (["--gold-share", "1"], "--gold-share: must be in [0, 1), got 1"),
        (["--seed-share", "lots"], "--seed-share: not a number: 'lots'"),
        (["--from", "x.json", "--gold", "g"], "--gold scores the labelers of a labeling run"),
    ],
)
def test_a_gold_source_that_cannot_be_read_or_a_bad_share_starts_nothing(
    fake_gt: FakeSageMaker, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    images, _ = folders(tmp_path)
    assert exit_code(["start", "--images", str(images), *extra, "--run-id", RUN]) == 2
    assert message in capsys.readouterr().err
    assert fake_gt.created == []
