"""Resuming a local project: how long a start on a half-done project takes, and the disk it uses.

1. Resume. ``gtaudit demo`` runs on N copies of the sample photos (default 1,000) in a project
   folder and is killed with SIGKILL once half of the labeling job's objects have their answers.
   Then, in this process, ``LocalRuntime(project_dir=...)`` starts on that folder: moto, the
   template's resources, the restore of every kept object and item, the emulator's records and the
   re-announcement of ended jobs; the time until it is ready is the resume. The floor is the same
   start on an empty folder, measured in this run (goal: resume under 5 s for 1,000 objects).
2. Disk. The demo runs to the end on two 12-megapixel photos (3968x2976 JPEG, as the phone photo
   of the reference's real job); the project folder's bytes per object are printed against the
   photos' own bytes.

    .venv/bin/python benchmarks/bench_project_resume.py [--objects 1000]

Exit code 1 if the resume misses the 5 s goal.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from gtaudit_local.demo import AUDITORS_TEAM, LABELERS_TEAM, make_workers
from gtaudit_local.runtime import LocalRuntime, find_project_root
from PIL import Image

GOAL_S = 5.0


def _photos(folder: Path, n: int, root: Path) -> int:
    """N photos: the samples, copied round-robin under new names; return their bytes."""
    samples = sorted(p for p in (root / "samples" / "images").iterdir() if p.suffix.lower() in {".jpg", ".png"})
    folder.mkdir(parents=True)
    total = 0
    for i in range(n):
        src = samples[i % len(samples)]
        dst = folder / f"{i:05d}-{src.name}"
        shutil.copy(src, dst)
        total += dst.stat().st_size
    return total


def _demo(out: Path, images: Path, root: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    command = ["demo", "--out", str(out), "--images", str(images), "--timeout", "7200"]
    return subprocess.Popen([sys.executable, "-m", "gtaudit_local.cli", *command], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def _answered(out: Path) -> int:
    jobs = out / "bucket" / "gtaudit-databucket" / "jobs"
    if not jobs.is_dir():
        return 0
    return sum(1 for _ in jobs.glob("*-labeling-r1-*/annotations/worker-response/iteration-1/*"))


def _start_seconds(root: Path, folder: Path, work: Path) -> tuple[float, LocalRuntime]:
    labelers, auditors, per_object = make_workers("scripted", root, 0)
    rt = LocalRuntime(
        root,
        work_dir=work,
        workteams={LABELERS_TEAM: labelers, AUDITORS_TEAM: auditors},
        parameters={"WorkteamArn": LABELERS_TEAM, "AuditWorkteamArn": AUDITORS_TEAM,
                    "LabelersPerObject": str(per_object)},
        project_dir=folder,
    )  # fmt: skip
    t = time.perf_counter()
    rt.start()
    return time.perf_counter() - t, rt


def _du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    args = parser.parse_args()
    root = find_project_root(Path(__file__).resolve().parent)
    with tempfile.TemporaryDirectory(prefix="bench-resume-") as tmp_name:
        tmp = Path(tmp_name)
        photo_bytes = _photos(tmp / "images", args.objects, root)
        out = tmp / "project"
        proc = _demo(out, tmp / "images", root)
        t0 = time.perf_counter()
        while proc.poll() is None and _answered(out) < args.objects // 2:
            time.sleep(0.5)
        proc.kill()
        proc.wait()
        answered = _answered(out)
        print(f"project: {args.objects} objects, killed after {time.perf_counter() - t0:.0f} s with "
              f"{answered} objects labeled; {_du(out) / 1e6:.0f} MB on disk")  # fmt: skip

        floor, rt = _start_seconds(root, tmp / "empty", tmp / "empty-logs")
        rt.close()
        resume, rt = _start_seconds(root, out, tmp / "resume-logs")
        restored = rt.restored
        rt.close()
        assert restored is not None
        print(f"start on an empty folder (floor)  {floor:6.2f} s")
        print(f"resume of the half-done project    {resume:6.2f} s  = {resume / floor:.2f}x the floor, "
              f"{resume / GOAL_S:.2f}x the {GOAL_S:.0f} s goal")  # fmt: skip
        print(f"  restore: {restored.objects} objects ({restored.object_bytes / 1e6:.0f} MB), "
              f"{restored.items} items in {restored.seconds:.2f} s")  # fmt: skip
        per_object, per_photo = _du(out) / args.objects / 1e3, photo_bytes / args.objects / 1e3
        print(f"  disk per object {per_object:.0f} KB vs the photo's {per_photo:.0f} KB")

        big = tmp / "big"
        big.mkdir()
        rng = np.random.default_rng(0)
        big_bytes = 0
        for i in range(2):
            base = np.asarray(
                Image.open(root / "samples" / "images" / "astronaut.jpg").convert("RGB").resize((3968, 2976))
            )
            noisy = np.clip(base.astype(np.int16) + rng.integers(-6, 7, base.shape), 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(noisy).save(buf, format="JPEG", quality=92)
            (big / f"photo{i}.jpg").write_bytes(buf.getvalue())
            big_bytes += len(buf.getvalue())
        proc = _demo(tmp / "big-project", big, root)
        proc.wait()
        used = _du(tmp / "big-project")
        print(f"12 MP: {used / 2 / 1e6:.1f} MB per object on disk, {used / big_bytes:.2f}x the photo "
              f"({big_bytes / 2 / 1e6:.1f} MB)")  # fmt: skip
    return 0 if resume < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
