"""A team in Chromium: two labelers and an auditor sign in with their links and work one queue.

Seats are fed tasks as the emulator's job threads feed them (``seat.work()`` in threads), rendered
from ``ui/*.liquid.html`` with the emulator's signed links; no emulator runs. The auditor's own
label waits first in the queue and is never shown to her. Screenshots of the home page, a task
page and the lead's page go to test-artifacts/ (and /tmp/team/ when it exists) for a person to judge.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from browser.task_pages import AUDIT, MASK_KEY, SEGMENTATION, audit_input, image_origin, segmentation_input
from gtaudit.trace import write_report
from gtaudit_local.groundtruth.server import SignedLinks
from gtaudit_local.liquid import render_task
from gtaudit_local.preview import s3_reader
from gtaudit_local.team.lead import JobProgress
from gtaudit_local.team.seats import JobSize, TeamQueue, make_seats
from gtaudit_local.team.server import TeamServer
from gtaudit_local.workers.base import Task
from team_support import jobs, offer, roster, task

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

LABELING = JobSize("garden-r1-labeling", "labeling", 2, 1)
AUDITING = JobSize("garden-r1-audit", "audit", 2, 1)
SHOTS = Path("/tmp/team")


@pytest.fixture
def contexts(chromium: Any) -> Iterator[list[Any]]:
    """Browsers of their own (cookies apart), closed at the end."""
    made: list[Any] = []
    yield made
    for context in made:
        context.close()


def person_page(chromium: Any, contexts: list[Any], link: str) -> Any:
    context = chromium.new_context(viewport={"width": 1280, "height": 860})
    contexts.append(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors
    page.goto(link)
    page.wait_for_url("**/")  # the sign-in page replaced itself, token and all, with the home page
    return page


def start(page: Any) -> str:
    """Press Start; return the image name over the task page."""
    page.click("#start")
    page.wait_for_url("**/task")
    return str(page.text_content("#gtaudit-image"))


def paint_and_submit(page: Any) -> None:
    page.wait_for_selector("crowd-semantic-segmentation[data-ready]", timeout=30_000)
    left, top, zoom = image_origin(page)
    page.keyboard.press("2")
    page.keyboard.press("p")
    for x, y in [(20, 20), (100, 20), (100, 80), (20, 80), (20, 20)]:
        page.mouse.click(left + x * zoom, top + y * zoom)
    page.click("crowd-button[form-action=submit] button")
    page.wait_for_url("**/", timeout=30_000)  # the crowd form waits for the claim to end, then goes home


def approve(page: Any) -> None:
    page.wait_for_function("document.querySelector('.gta-class .pc').textContent !== ''", timeout=30_000)
    page.keyboard.press("a")
    page.keyboard.press("Control+Enter")
    page.wait_for_url("**/", timeout=30_000)


def screenshot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / name), full_page=True)
    if SHOTS.is_dir():
        shutil.copy(artifacts / name, SHOTS / name)


def test_two_labelers_and_an_auditor_work_one_queue(
    chromium: Any, contexts: list[Any], s3: Any, images: str, trace_table: str, tmp_path: Path, artifacts: Path
) -> None:
    bucket = images
    team = roster(tmp_path)
    ana, ben, chloe = team.person("Ana"), team.person("Ben"), team.person("Chloé")
    emulator = SignedLinks(s3)
    emulator.endpoint = "http://127.0.0.1:4321"  # the emulator's links, as its pages carry them
    label_page = render_task(SEGMENTATION, segmentation_input(bucket), emulator.url_for)
    audit_page = render_task(AUDIT, audit_input(bucket), emulator.url_for)

    def emulated(job: JobSize, object_id: str, page_html: str, labelers: list[str] | None = None) -> Task:
        return task(job.name, job.kind, object_id, html=page_html, labelers=labelers, grants=emulator.grants)

    queue = TeamQueue(team, jobs(LABELING, AUDITING))
    seats = make_seats(queue, 4)
    # Chloé's worker ID among the labelers of "mine": she labeled it before she became the auditor.
    own = offer(queue, emulated(AUDITING, "mine", audit_page, [chloe.worker_id, ana.worker_id]), seats[0])
    working = [
        offer(queue, emulated(AUDITING, "theirs", audit_page, [ana.worker_id, ben.worker_id]), seats[1]),
        offer(queue, emulated(LABELING, "coffee", label_page), seats[2]),
        offer(queue, emulated(LABELING, "rocket", label_page), seats[3]),
    ]
    attention = [
        {
            "source-ref": f"s3://{bucket}/images/lemon tree.jpg",
            "object-id": "lemon-tree-1a2b",
            "gtaudit": {
                "outcome": "needs-attention",
                "round": 3,
                "reason": "rejected in round 3, the last of 3",
                "mask": f"s3://{bucket}/{MASK_KEY}",
                "feedback": {
                    "reasons": ["loose-boundary", "missing-object"],
                    "comment": "The left branch is <b>not</b> painted.",
                    "notes": [{"n": 1, "x": 0.2, "y": 0.3, "text": "this branch"}],
                    "auditors": [chloe.worker_id],
                },
            },
        }
    ]
    report = write_report(trace_table, tmp_path / "report", ddb=boto3.client("dynamodb"), formats=("html",))["html"]
    progress = [
        JobProgress(LABELING.name, "labeling", 1, "Completed", 2, 2),
        JobProgress(AUDITING.name, "audit", 1, "InProgress", 0, 2),
    ]
    with TeamServer(
        team,
        queue,
        read_object=s3_reader(s3),
        progress=lambda: progress,
        needs_attention=lambda: attention,
        report=lambda: report.read_text(encoding="utf-8"),
        stop=queue.close,
    ) as server:
        ana_page, ben_page, chloe_page = (
            person_page(chromium, contexts, server.sign_in_link(p.name)) for p in (ana, ben, chloe)
        )
        assert "signin" not in ana_page.url
        assert ana_page.text_content("#left") == "2" and ana_page.text_content("#of") == "2"
        screenshot(ana_page, artifacts, "team-home.png")

        seen = {"Ana": start(ana_page), "Ben": start(ben_page)}
        assert sorted(seen.values()) == ["coffee.jpg", "rocket.jpg"]
        screenshot(ana_page, artifacts, "team-task.png")
        paint_and_submit(ana_page)
        paint_and_submit(ben_page)
        ana_page.wait_for_function("document.getElementById('left').textContent === '0'")  # polled

        shown_to_chloe = [start(chloe_page)]
        screenshot(chloe_page, artifacts, "team-audit.png")
        lead = person_page(chromium, contexts, server.sign_in_link("Dana"))
        lead.goto(server.url + "lead")
        assert "nobody on the team" in (lead.text_content("main") or "")
        lead.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        lead.frame_locator("iframe").locator("h1").wait_for()  # the worker report, embedded
        lead.set_viewport_size({"width": 1280, "height": 2200})  # a frame below the fold is not painted
        lead.frame_locator("iframe").locator("h1").wait_for()
        screenshot(lead, artifacts, "team-lead.png")
        assert not any(p.errors for p in (ana_page, ben_page, chloe_page, lead))

        approve(chloe_page)
        chloe_page.click("#start")  # only her own label is left: nothing for her
        chloe_page.wait_for_function("document.getElementById('status').textContent.startsWith('Nothing')")
        assert chloe_page.url.endswith("/") and shown_to_chloe == ["theirs.jpg"]

        lead.click("#stop")
        lead.click("#stop-confirm")
        assert own.answer().status == "abandoned"  # Stop closed the queue: her own label was never shown
    answers = {a.worker_id: a for a in (w.answer() for w in working)}
    assert set(answers) == {ana.worker_id, ben.worker_id, chloe.worker_id}
    assert all(a.status == "submitted" for a in answers.values())
    assert "crowd-semantic-segmentation" in str(answers[ana.worker_id].content)
