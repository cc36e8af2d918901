"""Two moto processes open one project store at the same moment (gtaudit_local.moto_process)."""

from __future__ import annotations

import threading
from pathlib import Path

from gtaudit_local.persist.store import AwsStore

ROUNDS, AT_ONCE = 25, 4


def _open_at_once(root: Path) -> list[BaseException]:
    """Open ``AT_ONCE`` stores on each of ``ROUNDS`` new project folders at the same moment."""
    errors: list[BaseException] = []
    for r in range(ROUNDS):
        start = threading.Barrier(AT_ONCE)

        def open_one(project: Path = root / f"p{r}", start: threading.Barrier = start) -> None:
            start.wait()
            try:
                AwsStore(project).close()
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(AT_ONCE)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return errors


def test_stores_opened_at_once_on_a_new_project_all_open(tmp_path: Path) -> None:
    assert _open_at_once(tmp_path) == []
    with AwsStore(tmp_path / "p0") as store:
        store.add_bucket("b")  # and the one database works
        assert store.tables() == []
