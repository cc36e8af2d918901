"""``gtaudit demo``'s exit code: a run that did not reach its final summary is never reported as finished."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gtaudit_local.cli import main
from gtaudit_local.demo import DemoResult


def summary(*, finished: bool) -> dict[str, Any]:
    counts = {"objects-in": 2, "approved": 1, "needing-attention": 0, "failed": 0, "stalled": 1}
    data: dict[str, Any] = {
        "jobs": [{"name": "gtaudit-labeling-r1-x", "kind": "labeling", "round": 1, "status": "Completed",
                  "objects": 2, "labeled": 2, "failed": 0, "seconds": 1.0}],
        "counts": {**counts, "failed-reasons": {}, "adds-up": True},
        "timings-seconds": {},
        "deliveries": {"ok": 3, "failed": [{"rule": "local-OrchestratorFunction-JobStateChange",
                                            "function": "gtaudit-OrchestratorFunction", "attempt": 3,
                                            "gave-up": True, "dead-lettered": True, "error": "Runtime.ExitError"}]},
        "finished": finished,
    }  # fmt: skip
    if not finished:
        data["stuck"] = {"objects": 1, "reasons": ["the orchestrator never wrote the run's final summary"]}
    return data


@pytest.mark.parametrize(("finished", "code"), [(True, 0), (False, 1)])
def test_the_exit_code_tells_a_finished_run_from_a_stuck_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, finished: bool, code: int
) -> None:
    def fake_run_demo(out: Path, **_: Any) -> DemoResult:
        return DemoResult(out, summary(finished=finished), "started clean")

    monkeypatch.setattr("gtaudit_local.demo.run_demo", fake_run_demo)
    assert main(["demo", "--out", str(tmp_path / "out")]) == code
    printed = capsys.readouterr().out
    assert ("did not finish" in printed) is (not finished)
    if not finished:
        assert "the orchestrator never wrote the run's final summary" in printed
        assert "stalled" in printed
