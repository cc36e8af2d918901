"""The lead's page: how far each job is, who is working on what, what needs a person's eye, and Stop.

What the page shows comes from callables the runtime gives the server, so this module knows the
emulator only through :func:`job_progress` and the run only through its needs-attention manifest lines:

- progress per job (stage, round, status, objects done of total);
- the team: each person's role, Ground Truth worker ID (the worker report names people by it),
  what they hold now and since when, and their queue;
- tasks nobody holds, with who may take them: "nobody" means the task waits until the roster
  changes (a second labeler per object with one labeler on the team, say);
- the needs-attention list: each object's overlay as a thumbnail (through a link the server
  signed), the image's name, and the auditors' reasons, comment and pinned notes;
- the live worker report (``gtaudit.trace.write_report``'s HTML, served sandboxed);
- Stop, in two clicks, sent with the session's CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gtaudit import layout
from gtaudit.exceptions import InvalidS3UriError
from gtaudit.manifest import GTAUDIT_KEY, OBJECT_ID_KEY
from gtaudit.models.stages import Feedback
from gtaudit.overlay.jobs import job_root_of
from gtaudit.reasons import REASONS
from gtaudit.s3uri import parse_s3_uri
from pydantic import ValidationError

from gtaudit_local.groundtruth.record import LabelingJobRun
from gtaudit_local.team.pages import document, esc, post_script, top_bar
from gtaudit_local.team.people import Person
from gtaudit_local.team.seats import Claim, QueueCount, Waiting, image_name

_REASON_TEXT = {r.code: r.en for r in REASONS}


@dataclass(frozen=True)
class JobProgress:
    """One job as the lead's page shows it."""

    name: str
    kind: str
    round: int
    status: str
    done: int
    total: int


def job_progress(records: Iterable[LabelingJobRun]) -> list[JobProgress]:
    """The emulator's job records as :class:`JobProgress`, oldest first (``progress`` of the server)."""
    return [
        JobProgress(job.name, job.kind, job.round, job.status, job.finished, job.total)
        for job in sorted(records, key=lambda j: j.created)
    ]


@dataclass(frozen=True)
class Attention:
    """One needs-attention object: its name, why, and what the auditors said."""

    image: str
    object_id: str
    round: str
    reason: str
    thumbnail: str | None  # s3:// URI of the overlay (else the original)
    feedback: Feedback = field(default_factory=Feedback)


def thumbnail(line: Mapping[str, Any]) -> str | None:
    """The picture of a needs-attention line: its overlay, else the overlay named after its mask, else the original.

    Needs-attention lines carry the mask, not always the overlay; the overlay of a mask is at a
    place the layout fixes (``<job>/overlays/<mask name>.jpg``).
    """
    info = line.get(GTAUDIT_KEY) if isinstance(line.get(GTAUDIT_KEY), dict) else {}
    assert isinstance(info, dict)
    if isinstance(info.get("overlay"), str):
        return str(info["overlay"])
    try:
        mask = parse_s3_uri(info.get("mask"))
        return str(layout.overlay(job_root_of(mask), layout.mask_name(mask)))
    except InvalidS3UriError:
        source = line.get("source-ref")
        return source if isinstance(source, str) else None


def attention(line: Mapping[str, Any]) -> Attention:
    """A needs-attention manifest line as the page shows it (a malformed feedback shows as none)."""
    info = line.get(GTAUDIT_KEY) if isinstance(line.get(GTAUDIT_KEY), dict) else {}
    assert isinstance(info, dict)
    try:
        feedback = Feedback.model_validate(info.get("feedback") or {})
    except ValidationError:
        feedback = Feedback()
    object_id = str(line.get(OBJECT_ID_KEY) or "")
    return Attention(
        image_name(line, object_id),
        object_id,
        str(info.get("round") or ""),
        str(info.get("reason") or ""),
        thumbnail(line),
        feedback,
    )


def _ago(since: datetime) -> str:
    seconds = int((datetime.now(UTC) - since).total_seconds())
    return f"{seconds // 60} min ago" if seconds >= 60 else f"{seconds} s ago"


def _progress_table(jobs: Sequence[JobProgress]) -> str:
    if not jobs:
        return '<p class="muted">No job yet.</p>'
    rows = "".join(
        f"<tr><td>{esc(j.name)}</td><td>{esc(j.kind)}</td><td>{j.round}</td><td>{esc(j.status)}</td>"
        f'<td>{j.done} / {j.total}</td><td><div class="bar"><span style="width:'
        f'{100 * j.done // max(1, j.total)}%"></span></div></td></tr>'
        for j in jobs
    )
    return (
        f"<table><tr><th>Job</th><th>Stage</th><th>Round</th><th>Status</th><th>Done</th><th></th></tr>{rows}</table>"
    )


def _people_table(people: Sequence[tuple[Person, QueueCount]], claims: Sequence[Claim]) -> str:
    held = {c.person.worker_id: c for c in claims}
    rows = []
    for person, count in people:
        claim = held.get(person.worker_id)
        doing = (
            f'{esc(claim.offer.image)} <span class="muted">({esc(claim.offer.task.kind)} · '
            f"{esc(claim.offer.task.job_name)})</span></td><td>{_ago(claim.since)}"
            if claim is not None
            else '<span class="muted">nothing</span></td><td>'
        )
        rows.append(
            f"<tr><td>{esc(person.name)}</td><td>{esc(person.role)}</td><td><code>{esc(person.worker_id)}</code></td>"
            f"<td>{doing}</td><td>{count.left} of {count.of}</td></tr>"
        )
    head = "<tr><th>Person</th><th>Role</th><th>Worker ID</th><th>Working on</th><th>Since</th><th>Left</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _waiting_table(waiting: Sequence[Waiting]) -> str:
    if not waiting:
        return '<p class="muted">No task is waiting for a person.</p>'
    rows = "".join(
        f"<tr><td>{esc(w.image)}</td><td>{esc(w.kind)} · {esc(w.job)}</td><td>{_ago(w.posted)}</td><td>"
        + (esc(", ".join(w.takers)) if w.takers else '<span class="bad">nobody on the team</span>')
        + "</td></tr>"
        for w in waiting
    )
    return f"<table><tr><th>Image</th><th>Task</th><th>Waiting</th><th>Who may take it</th></tr>{rows}</table>"


def _attention_cards(items: Sequence[Attention], link: Callable[[str], str | None]) -> str:
    if not items:
        return '<p class="muted">Nothing needs attention.</p>'
    cards = []
    for item in items:
        src = link(item.thumbnail) if item.thumbnail else None
        img = f'<img alt="{esc(item.image)}" src="{esc(src)}">' if src else ""
        fb = item.feedback
        reasons = "".join(f"<li>{esc(_REASON_TEXT.get(r, r))}</li>" for r in fb.reasons)
        notes = "".join(f"<li>{n.n}. {esc(n.text)}</li>" for n in fb.notes)
        cards.append(
            f'<div class="card">{img}<h3>{esc(item.image)}</h3>'
            f'<p class="muted">object {esc(item.object_id)} · round {esc(item.round)}</p>'
            f"<p>{esc(item.reason)}</p>"
            + (f"<ul>{reasons}</ul>" if reasons else "")
            + (f"<p><b>Comment:</b> {esc(fb.comment)}</p>" if fb.comment else "")
            + (f'<p><b>Notes:</b></p><ul class="notes">{notes}</ul>' if notes else "")
            + (f'<p class="muted">auditors: {esc(", ".join(fb.auditors))}</p>' if fb.auditors else "")
            + "</div>"
        )
    return f'<div class="cards">{"".join(cards)}</div>'


_STOP_SCRIPT = """<script>
const ask = document.getElementById('stop'), confirmStop = document.getElementById('stop-confirm');
ask.onclick = () => { confirmStop.hidden = false; ask.hidden = true; };
confirmStop.onclick = () => post('/lead/stop').then(r => {
  document.getElementById('stop-status').textContent = r.ok ? 'Stopping the project...' : 'Stop failed: ' + r.status;
  confirmStop.disabled = true; });
</script>"""


def lead_page(
    lead: Person,
    csrf: str,
    *,
    jobs: Sequence[JobProgress],
    people: Sequence[tuple[Person, QueueCount]],
    claims: Sequence[Claim],
    waiting: Sequence[Waiting],
    attention_items: Sequence[Attention],
    link: Callable[[str], str | None],
    has_report: bool,
    stopping: bool,
) -> str:
    """The whole lead's page; ``link`` turns an ``s3://`` URI into a link the server signed."""
    report = (
        '<p><a href="/lead/report" target="_blank" rel="noopener">Open the worker report</a></p>'
        '<iframe title="worker report" src="/lead/report"></iframe>'
        if has_report
        else '<p class="muted">No worker report yet.</p>'
    )
    stop = (
        "<p><b>The project is stopping.</b></p>"
        if stopping
        else '<p><button class="danger" id="stop" type="button">Stop the project…</button> '
        '<button class="danger" id="stop-confirm" type="button" hidden>Yes, stop it now</button> '
        '<span id="stop-status" role="status"></span></p>'
        '<p class="muted">Open tasks are abandoned and come back after a restart; every submitted answer is kept.</p>'
        + _STOP_SCRIPT
    )
    body = (
        post_script(csrf)
        + top_bar(lead.name, lead.role, lead_link=False)
        + "<main><h1>Lead</h1>"
        + f"<h2>Progress</h2>{_progress_table(jobs)}"
        + f"<h2>Who is working on what</h2>{_people_table(people, claims)}"
        + f"<h2>Waiting for a person</h2>{_waiting_table(waiting)}"
        + f"<h2>Needs attention ({len(attention_items)})</h2>{_attention_cards(attention_items, link)}"
        + f"<h2>Worker report</h2>{report}"
        + f"<h2>Stop</h2>{stop}</main>"
        + "<script>setInterval(() => { const c = document.getElementById('stop-confirm');"
        + " if (!c || c.hidden) location.reload(); }, 30000);</script>"
    )
    return document("Lead · gtaudit team", body)
