"""A team on a local project: the roster from ``--people``, the seats, and the server, wired to a runtime.

``gtaudit demo --workers team --people 'ana:labeler,ben:labeler,cho:auditor,lee:lead'`` makes a
:class:`TeamProject` before the runtime starts (the seats are the workteams' workers), then
:meth:`TeamProject.serve` once it runs: the server's lead page reads the emulator's jobs, the run's
needs-attention manifest and the trace report, and its Stop button asks the demo to end cleanly.
Stopping closes the seats, so every task a person held goes back to the queue for the next start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gtaudit.manifest import iter_manifest

from gtaudit_local.groundtruth.record import LabelingJobRun
from gtaudit_local.preview import s3_reader
from gtaudit_local.team.lead import job_progress
from gtaudit_local.team.ledger import LEDGER_FILE, Ledger
from gtaudit_local.team.people import ROLES, Roster, RosterError
from gtaudit_local.team.seats import Seat, TeamQueue, make_seats, running_jobs
from gtaudit_local.team.server import TeamServer

SEATS = 4  # tasks open at a time, across the team


def parse_people(spec: str) -> list[tuple[str, str]]:
    """``'ana:labeler,ben:auditor'`` as ``[(name, role), ...]``.

    Raises
    ------
    RosterError
        An entry without a role, or an unknown role.
    """
    people = []
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        name, sep, role = entry.rpartition(":")
        if not sep or not name.strip() or role.strip() not in ROLES:
            raise RosterError(f"--people entries are name:role with a role of {', '.join(ROLES)}; got {entry!r}")
        people.append((name.strip(), role.strip()))
    return people


class TeamProject:
    """The team of one project folder: roster, ledger, queue and seats; the server once the runtime runs."""

    def __init__(self, project_dir: Path, people: str | None) -> None:
        self.roster = Roster(project_dir)
        known = {p.name for p in self.roster.people}
        for name, role in parse_people(people or ""):
            if name not in known:
                self.roster.add(name, role)
        if not self.roster.people:
            raise RosterError("a team needs people: --people 'ana:labeler,ben:labeler,cho:auditor,lee:lead'")
        self.ledger = Ledger(project_dir / LEDGER_FILE)
        self._jobs: Callable[[], Iterable[LabelingJobRun]] = list
        self.queue = TeamQueue(self.roster, lambda: running_jobs(self._jobs()), ledger=self.ledger, await_kept=True)
        self.seats: list[Seat] = make_seats(self.queue, SEATS)
        self.stop_requested = threading.Event()
        self.server: TeamServer | None = None

    def serve(
        self,
        *,
        s3: Any,
        bucket: str,
        run_id: str,
        jobs: Callable[[], Iterable[LabelingJobRun]],
        report: Callable[[], str | None],
        host: str = "127.0.0.1",
        port: int = 0,
        names: Sequence[str] = (),
    ) -> TeamServer:
        """Start the server on the running runtime; its Stop button sets :attr:`stop_requested`."""
        self._jobs = jobs
        read = s3_reader(s3)

        def needs_attention() -> list[Mapping[str, Any]]:
            body = read(bucket, f"runs/{run_id}/needs-attention.manifest") or b""
            return [item.data for item in iter_manifest(body.splitlines()) if hasattr(item, "data")]

        self.server = TeamServer(
            self.roster,
            self.queue,
            read_object=read,
            progress=lambda: job_progress(list(jobs())),
            needs_attention=needs_attention,
            report=report,
            stop=self.stop_requested.set,
            host=host,
            port=port,
            names=names,
        ).start()
        return self.server

    def links(self) -> dict[str, str]:
        """Each person's sign-in link."""
        assert self.server is not None
        return {p.name: self.server.sign_in_link(p.name) for p in self.roster.people}

    def close(self) -> None:
        """Put every held task back (seats abandon), stop serving, close the ledger."""
        self.queue.close()
        if self.server is not None:
            self.server.close()
        self.ledger.close()


def describe(team: TeamProject) -> str:
    """The roster and links as lines to print (links carry tokens: for the people they name only)."""
    roles = {p.name: p.role for p in team.roster.people}
    return "\n".join(f"  {name} ({roles[name]}): {link}" for name, link in team.links().items())
