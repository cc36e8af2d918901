"""The demo end to end on a reduced sample set: summary counts, GT's layout of every file, clean restarts."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from gtaudit_local.demo import DemoError, run_demo
from gtaudit_local.project import PROJECT_FILE

# The module shares one runtime (or one demo run): keep its tests on one xdist worker.
pytestmark = pytest.mark.xdist_group("local-runtime-demo")

ROOT = Path(__file__).resolve().parents[3]
BUCKET = "gtaudit-databucket"  # the template's DataBucket, as the local runtime names it


def data(out: Path) -> Path:
    """Where a project folder keeps the data bucket's objects as files."""
    return out / "bucket" / BUCKET


IMAGES = ("coffee.jpg", "horse.png", "chelsea-exif6.jpg")

STAMP = r"\d{4}-\d{2}-\d{2}_\d{2}:\d{2}:\d{2}"
# Every file a job may hold, relative to <S3OutputPath>/<job>/ (reference section 4 + our overlays).
LAYOUT = {
    "worker-response": re.compile(rf"^annotations/worker-response/iteration-(\d+)/(\d+)/{STAMP}\.json$"),
    "consolidation-request": re.compile(
        rf"^annotations/consolidated-annotation/consolidation-request/iteration-(\d+)/{STAMP}\.json$"
    ),
    "consolidation-response": re.compile(
        rf"^annotations/consolidated-annotation/consolidation-response/iteration-(\d+)/{STAMP}\.json$"
    ),
    # Masks and overlays carry the image's own name (timestamps hold no "_"); names/ records who holds each.
    "mask": re.compile(r"^annotations/consolidated-annotation/output/([^/]+)_[0-9A-Za-z-]+\.png$"),
    "mask-name": re.compile(r"^annotations/consolidated-annotation/output/names/([^/]+)\.json$"),
    # gtaudit's: each labeler's IoU against the vote (and a gold truth), named as the object's mask.
    "scores": re.compile(r"^annotations/consolidated-annotation/scores/([^/]+)\.json$"),
    "intermediate": re.compile(r"^annotations/intermediate/(\d+)/annotations\.json$"),
    "output-manifest": re.compile(r"^manifests/output/output\.manifest$"),
    "overlay": re.compile(r"^overlays/([^/]+)\.jpg$"),
}
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("demo")
    images = tmp / "images"
    images.mkdir()
    for name in IMAGES:
        shutil.copy(ROOT / "samples" / "images" / name, images / name)
    out = tmp / "out"
    result = run_demo(out, images=images, project=ROOT, log=lambda _line: None)
    return {"out": out, "images": images, "summary": result.summary, "note": result.started_clean}


def _name(kind: str, rel: str) -> str:
    m = LAYOUT[kind].match(rel)
    assert m, rel
    return m.group(1)


def _kind(rel: str) -> str:
    for kind, pattern in LAYOUT.items():
        if pattern.match(rel):
            return kind
    raise AssertionError(f"a file outside Ground Truth's layout: {rel}")


def check_answer(a: dict[str, Any]) -> None:
    assert set(a) == {"acceptanceTime", "answerContent", "submissionTime", "timeSpentInSeconds", "workerId",
                      "workerMetadata"}  # fmt: skip
    assert ISO_MS.match(a["acceptanceTime"]) and ISO_MS.match(a["submissionTime"])
    assert a["submissionTime"] >= a["acceptanceTime"]
    assert isinstance(a["timeSpentInSeconds"], float | int) and a["timeSpentInSeconds"] > 0
    assert a["workerId"].startswith("private.us-east-1.")
    ident = a["workerMetadata"]["identityData"]
    assert ident["identityProviderType"] == "Cognito" and ident["issuer"].startswith("https://cognito-idp.")
    assert re.match(r"^[0-9a-f-]{36}$", ident["sub"])
    assert isinstance(a["answerContent"], dict) and a["answerContent"]


@pytest.mark.slow
def test_summary_counts_add_up_and_every_job_completed(demo: dict[str, Any]) -> None:
    s = demo["summary"]
    c = s["counts"]
    assert c["objects-in"] == len(IMAGES)
    assert c["objects-in"] == c["approved"] + c["needing-attention"] + c["failed"]
    assert c["adds-up"] is True
    assert c["failed"] == sum(c["failed-reasons"].values())
    assert c.get("pipeline-agrees", True) is True
    assert s["jobs"] and all(j["status"] == "Completed" for j in s["jobs"])
    assert s["jobs"][0]["kind"] == "labeling" and s["jobs"][0]["round"] == 1
    assert {j["kind"] for j in s["jobs"]} <= {"labeling", "audit", "rework"}
    assert len(s["objects"]) == len(IMAGES)
    assert not s["deliveries"]["failed"]
    on_disk = json.loads((demo["out"] / "summary.json").read_text())
    assert on_disk["counts"] == c


@pytest.mark.slow
def test_the_accepted_manifest_is_ground_truths_built_in_segmentation_form(demo: dict[str, Any]) -> None:
    """What SageMaker's built-in semantic-segmentation algorithm (AttributeNames ["source-ref",
    "segmentation-ref"]) and the usual Ground Truth converters read, with gtaudit's trail beside it."""
    out: Path = demo["out"]
    run = demo["summary"]["run"]
    lines = [json.loads(x) for x in (data(out) / "runs" / run / "accepted.manifest").read_text().splitlines() if x]
    assert len(lines) == demo["summary"]["counts"]["approved"] > 0
    for line in lines:
        assert list(line)[:3] == ["source-ref", "segmentation-ref", "segmentation-ref-metadata"]
        mask = line["segmentation-ref"]
        assert mask.startswith("s3://") and mask.endswith(".png") and mask == line["gtaudit"]["mask"]
        meta = line["segmentation-ref-metadata"]
        assert meta["type"] == "groundtruth/semantic-segmentation" and meta["human-annotated"] == "yes"
        assert meta["job-name"].startswith("labeling-job/gtaudit-") and re.match(
            r"^\d{4}-\d\d-\d\dT", meta["creation-date"]
        )
        assert meta["internal-color-map"]["0"]["class-name"] == "BACKGROUND"
        assert (data(out) / mask.split("/", 3)[3]).is_file()  # the mask the line names is in the bucket


@pytest.mark.slow
def test_labels_given_on_the_command_line_are_the_runs_classes_and_colours(tmp_path: Path) -> None:
    """--labels reaches every stage (the stack's LabelSet), and an image the scripted workers have no
    reference for is named in a warning, since their approval of it means nothing."""
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(ROOT / "samples" / "images" / "coffee.jpg", images / "coffee.jpg")
    shutil.copy(ROOT / "samples" / "images" / "coffee.jpg", images / "mystery.jpg")
    lines: list[str] = []
    result = run_demo(tmp_path / "out", images=images, project=ROOT, log=lines.append, labels="object=#00aa00,person")
    warnings = [x for x in lines if x.startswith("warning:")]
    assert len(warnings) == 1 and "1 of 2 images" in warnings[0] and "mystery.jpg" in warnings[0]
    assert "coffee.jpg" not in warnings[0]
    counts = result.summary["counts"]
    assert counts["adds-up"] and counts["objects-in"] == 2
    run = result.summary["run"]
    categories = json.loads((data(tmp_path / "out") / "runs" / run / "label-categories.json").read_text())
    assert [c["label"] for c in categories["labels"]] == ["object", "person"]
    for name in ("accepted", "needs-attention"):
        for raw in (data(tmp_path / "out") / "runs" / run / f"{name}.manifest").read_text().splitlines():
            cmap = json.loads(raw)["segmentation-ref-metadata"]["internal-color-map"]
            assert {v["class-name"]: v["hex-color"] for v in cmap.values()} == {
                "BACKGROUND": "#ffffff",
                "object": "#00aa00",
                "person": "#2ca02c",
            }


@pytest.mark.slow
def test_every_file_of_every_job_follows_ground_truths_layout(demo: dict[str, Any]) -> None:
    out: Path = demo["out"]
    jobs = {j["name"]: j for j in demo["summary"]["jobs"]}
    job_dirs = sorted(p for p in (data(out) / "jobs").iterdir() if p.is_dir())
    assert [p.name for p in job_dirs] == sorted(jobs)
    for job_dir in job_dirs:
        job = jobs[job_dir.name]
        files = sorted(p.relative_to(job_dir).as_posix() for p in job_dir.rglob("*") if p.is_file())
        kinds: dict[str, list[str]] = {}
        for rel in files:
            kinds.setdefault(_kind(rel), []).append(rel)
        assert len(kinds["output-manifest"]) == 1 and len(kinds["consolidation-request"]) == 1
        for rel in kinds["worker-response"]:
            doc = json.loads((job_dir / rel).read_text())
            assert set(doc) == {"answers"} and doc["answers"]
            for a in doc["answers"]:
                check_answer(a)
        batch = json.loads((job_dir / kinds["consolidation-request"][0]).read_text())
        assert isinstance(batch, list) and batch
        responded = {rel.split("/")[3] for rel in kinds["worker-response"]}
        assert {b["datasetObjectId"] for b in batch} == responded
        for item in batch:
            assert set(item) == {"datasetObjectId", "dataObject", "annotations"}
            assert set(item["dataObject"]) == {"s3Uri"} and item["dataObject"]["s3Uri"].startswith("s3://")
            for ann in item["annotations"]:
                assert set(ann) == {"workerId", "annotationData"}
                assert isinstance(json.loads(ann["annotationData"]["content"]), dict)
        response = json.loads((job_dir / kinds["consolidation-response"][0]).read_text())
        assert {r["datasetObjectId"] for r in response} == {b["datasetObjectId"] for b in batch}
        lines = [json.loads(x) for x in (job_dir / "manifests/output/output.manifest").read_text().splitlines()]
        assert len(lines) == job["objects"]
        attr = next(k[: -len("-metadata")] for k in lines[0] if k.endswith("-metadata"))
        for line in lines:
            meta = line[f"{attr}-metadata"]
            assert meta["type"] == "groundtruth/custom"
            assert meta["job-name"] == f"labeling-job/{job_dir.name}"
            assert meta["human-annotated"] in {"yes", "no"} and meta["creation-date"]
            assert ("failure-reason" in meta) != (attr in line)
            assert line["object-id"] in demo["summary"]["objects"]
        if job["kind"] in {"labeling", "rework"}:
            assert len(kinds.get("mask", [])) == job["labeled"]
            assert len(kinds.get("overlay", [])) == job["labeled"]
            names = {_name("mask", rel) for rel in kinds.get("mask", [])}
            assert names == {_name("overlay", rel) for rel in kinds.get("overlay", [])}
            assert {_name("mask-name", rel) for rel in kinds.get("mask-name", [])} == {n.casefold() for n in names}
            assert {_name("scores", rel) for rel in kinds.get("scores", [])} <= names and kinds.get("scores")
            for line in lines:  # no two sample images share a stem: each mask is named as its object
                mask_ref = (line.get(attr) or {}).get("mask-ref")
                if mask_ref:
                    assert mask_ref.rsplit("/", 1)[1].startswith(line["object-id"] + "_")
                    assert line["object-id"] in names


@pytest.mark.slow
def test_a_second_run_in_the_same_folder_starts_clean_and_says_so(demo: dict[str, Any], tmp_path: Path) -> None:
    """A finished project's folder starts a new project (an interrupted one resumes: test_resume.py)."""
    assert "starting a new project" in demo["note"]
    project = json.loads((demo["out"] / PROJECT_FILE).read_text())
    assert project["run"] == demo["summary"]["run"] and project["finished"] is True
    out = tmp_path / "again"
    shutil.copytree(demo["out"], out)
    (data(out) / "jobs" / "stale-file.txt").write_text("from before")
    result = run_demo(out, images=demo["images"], project=ROOT, log=lambda _line: None)
    assert f"held the finished run {demo['summary']['run']}" in result.started_clean
    assert "starting clean" in result.started_clean
    assert not (data(out) / "jobs" / "stale-file.txt").exists()
    assert result.summary["run"] != demo["summary"]["run"]
    assert {p.name for p in (data(out) / "runs").iterdir()} == {result.summary["run"]}


def test_a_foreign_non_empty_folder_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(DemoError, match="not empty"):
        run_demo(tmp_path, project=ROOT, log=lambda _line: None)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _listening_ports(pid: int) -> set[int]:
    """The ports the runtime and its children listen on (moto serves from a child process)."""
    ports: set[int] = set()
    try:
        family = [psutil.Process(pid), *_descendants(pid)]
    except psutil.NoSuchProcess:
        return ports
    for p in family:
        try:
            ports |= {c.laddr.port for c in p.net_connections() if c.status == psutil.CONN_LISTEN}
        except psutil.NoSuchProcess:
            continue
    return ports


def _start_demo(
    tmp_path: Path, workers: str = "scripted"
) -> tuple[subprocess.Popen[str], list[psutil.Process], set[int]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gtaudit_local.cli", "demo", "--workers", workers, "--out", str(tmp_path / "out")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    children: list[psutil.Process] = []
    ports: set[int] = set()
    # Wait until a job is under way (Lambda workers run; with browser workers, a task page waits for
    # a person, so the run cannot end before the signal arrives), then interrupt.
    want_children, want_ports = (1, 4) if workers == "browser" else (2, 3)
    while time.monotonic() < deadline and proc.poll() is None:
        children = _descendants(proc.pid)
        ports = _listening_ports(proc.pid)
        if len(children) >= want_children and len(ports) >= want_ports:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
    assert children and len(ports) >= 3
    return proc, children, ports


def _gone(children: list[psutil.Process], timeout: float) -> bool:
    _, alive = psutil.wait_procs(children, timeout=timeout)
    return not alive


@pytest.mark.slow
def test_ctrl_c_stops_every_server_and_worker(tmp_path: Path) -> None:
    # Browser workers wait for a person: the interrupt always lands mid-run. With scripted workers a
    # fast demo could finish first and exit 0, which is how this test once failed under load.
    proc, children, ports = _start_demo(tmp_path, workers="browser")
    proc.send_signal(signal.SIGINT)
    # 130 from the CLI's handler; now and then, under load, the interpreter ends by the signal itself
    # after printing "interrupted" (-SIGINT here, 130 to a shell as well). Either way it was Ctrl-C.
    rc = proc.wait(timeout=60)
    out = proc.stdout.read() if proc.stdout else ""
    assert rc in (130, -signal.SIGINT) and re.search(r"interrupted$", out, re.MULTILINE), (rc, out[-2000:])
    assert _gone(children, 10)
    for port in ports:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"


@pytest.mark.slow
def test_a_killed_runtime_leaves_no_lambda_workers(tmp_path: Path) -> None:
    proc, children, _ = _start_demo(tmp_path)
    proc.kill()
    proc.wait(timeout=10)
    assert _gone(children, 10)


@pytest.mark.slow
def test_the_leads_stop_ends_a_team_session_cleanly_and_the_project_stays_resumable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gtaudit_local.demo as demo_module

    class StopsAtOnce(demo_module.TeamProject):
        """The lead presses Stop as soon as the server is up (before anyone took a task)."""

        def serve(self, **kwargs: Any) -> Any:
            server = super().serve(**kwargs)
            self.stop_requested.set()
            return server

    monkeypatch.setattr(demo_module, "TeamProject", StopsAtOnce)
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(ROOT / "samples" / "images" / "coffee.jpg", images / "coffee.jpg")
    out, lines = tmp_path / "out", []
    result = run_demo(
        out, workers="team", people="ana:labeler,cho:auditor", images=images, project=ROOT, log=lines.append
    )
    assert any(line.startswith("stopped from the lead's page") for line in lines)
    assert not result.finished and json.loads((out / "summary.json").read_text())["finished"] is False
    assert json.loads((out / PROJECT_FILE).read_text())["finished"] is False  # the next start resumes it
    assert any("ana (labeler): http://127.0.0.1:" in line for line in lines)
