"""The local runtime at scale: wall time, time per object and peak memory of the whole process tree.

Runs the scripted demo (2 labelers per object, 1 auditor, rework) on N objects in a child process
and samples the memory of that process and all its descendants (moto, the Lambda workers) every
0.5 s, as PSS: a page shared by several processes (the libraries every Lambda worker maps, a
process just forked) counts once, split among them. Images are copies of the sample photos under
new names (``--size sample``) or the same photos scaled to 3968x2976 (``--size 12mp``, the real
2020 job's phone photos);
objects without a reference mask get the scripted workers' central ellipse, which costs the same
decoding, painting and encoding.

    .venv/bin/python benchmarks/bench_runtime_scale.py --objects 12 192 768 --size sample
    .venv/bin/python benchmarks/bench_runtime_scale.py --objects 12 100 --size 12mp

Each line: objects, wall seconds, seconds per object, peak PSS of the tree (MB), the growth per
object above the first run's, and the CPU use of the tree as cores (user+system / wall).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "images"
TWELVE_MP = (3968, 2976)

_CHILD = """
import json, sys
from pathlib import Path
from gtaudit_local.demo import run_demo
out, images = Path(sys.argv[1]), Path(sys.argv[2])
r = run_demo(out, images=images, log=lambda _l: None, timeout=6 * 3600.0)
print(json.dumps(r.summary["counts"]))
"""


def make_images(folder: Path, n: int, size: str) -> None:
    """``n`` photos named ``<sample>-<i>``: copies of the samples, or the samples scaled to 12 MP."""
    folder.mkdir(parents=True)
    sources = sorted(p for p in SAMPLES.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    scaled: dict[Path, Path] = {}
    for i in range(n):
        src = sources[i % len(sources)]
        target = folder / f"{src.stem}-{i:05d}{src.suffix}"
        if size == "sample":
            shutil.copyfile(src, target)
            continue
        if src not in scaled:
            with Image.open(src) as img:
                big = img.convert("RGB").resize(TWELVE_MP, Image.Resampling.BILINEAR)
            scaled[src] = folder / f"_scaled-{src.stem}.jpg"
            big.save(scaled[src], quality=90)
        shutil.copyfile(scaled[src], target.with_suffix(".jpg"))
    for p in folder.glob("_scaled-*"):
        p.unlink()


def tree_rss(
    proc: psutil.Process, peaks: dict[str, int], cpus: dict[str, float], now: dict[str, int]
) -> tuple[int, float]:
    """Proportional set size (PSS) of ``proc`` and its descendants, and their CPU seconds so far.

    ``peaks`` keeps each process's own peak under a short name (its role in the runtime), ``cpus``
    its CPU seconds so far; ``now`` gets this sample's PSS by role.
    """
    rss, cpu = 0, 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            mine = p.memory_full_info().pss  # shared pages (numpy in every Lambda worker, a fork) once
            t = p.cpu_times()
            name = _role(p)
        except psutil.Error:
            continue
        rss += mine
        group = name.split(":", 1)[0]
        now[group] = now.get(group, 0) + mine
        cpu += t.user + t.system + t.children_user + t.children_system
        key = f"{name} {p.pid}"
        peaks[key] = max(peaks.get(key, 0), mine)
        # A process that has ended has no command line ("?"): keep the role it was last seen with.
        if name == "?":
            key = next((k for k in cpus if k.endswith(f" {p.pid}") and not k.startswith("? ")), key)
        cpus[key] = max(cpus.get(key, 0.0), t.user + t.system)
    return rss, cpu


def _role(p: psutil.Process) -> str:
    cmdline = p.cmdline()
    text = " ".join(cmdline)
    if "moto_process" in text:
        return "moto-dynamodb" if "--part dynamodb" in text else "moto"
    if "_lambda_worker" in text:
        return "lambda:" + p.cwd().rsplit("/", 1)[-1]
    return "runtime" if "run_demo" in text else (cmdline[0].rsplit("/", 1)[-1] if cmdline else "?")


def run(n: int, size: str, tmp: Path) -> dict[str, float]:
    images = tmp / f"images-{size}-{n}"
    make_images(images, n, size)
    out = tmp / f"out-{size}-{n}"
    t = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(out), str(images)], stdout=subprocess.PIPE, text=True)
    proc = psutil.Process(child.pid)
    peak, cpu = 0, 0.0
    peaks: dict[str, int] = {}
    cpus: dict[str, float] = {}
    at_peak: dict[str, int] = {}
    while child.poll() is None:
        now: dict[str, int] = {}
        rss, c = tree_rss(proc, peaks, cpus, now)
        if rss > peak:
            at_peak = {**now, "seconds": int(time.perf_counter() - t)}
        peak, cpu = max(peak, rss), max(cpu, c)
        time.sleep(0.5)
    wall = time.perf_counter() - t
    counts = json.loads((child.stdout.read() if child.stdout else "").strip().splitlines()[-1])
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(images, ignore_errors=True)
    if child.returncode != 0 or not counts.get("adds-up"):
        raise SystemExit(f"{n} objects: the demo failed ({child.returncode}, {counts})")
    top = sorted(peaks.items(), key=lambda kv: -kv[1])[:4]
    print("   largest processes: " + ", ".join(f"{k.rsplit(' ', 1)[0]} {v / 2**20:.0f} MB" for k, v in top))
    by_role: dict[str, float] = {}
    for k, v in cpus.items():
        role = k.rsplit(" ", 1)[0].split(":", 1)[0]
        by_role[role] = by_role.get(role, 0.0) + v
    when = at_peak.pop("seconds", 0)
    print(f"   at the peak ({when} s of {wall:.0f}): " + ", ".join(
        f"{role} {v / 2**20:.0f} MB" for role, v in sorted(at_peak.items(), key=lambda kv: -kv[1])))  # fmt: skip
    busiest = sorted(by_role.items(), key=lambda kv: -kv[1])
    print("   cores by role: " + ", ".join(f"{role} {v / wall:.2f}" for role, v in busiest))
    return {"objects": n, "wall": wall, "per_object": wall / n, "peak_mb": peak / 2**20, "cores": cpu / wall,
            "approved": counts.get("approved", 0)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[12, 192, 768])
    parser.add_argument("--size", choices=("sample", "12mp"), default="sample")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for n in args.objects:
            rows.append(run(n, args.size, Path(tmp)))
            r = rows[-1]
            print(f"{args.size:>6} {r['objects']:>6} objects: {r['wall']:8.1f} s, {r['per_object']:6.3f} s/object, "
                  f"peak tree PSS {r['peak_mb']:7.0f} MB, {r['cores']:.2f} cores busy, {r['approved']:.0f} approved",
                  flush=True)  # fmt: skip
    if len(rows) > 1:
        base = rows[0]
        for r in rows[1:]:
            growth = (r["peak_mb"] - base["peak_mb"]) / (r["objects"] - base["objects"])
            print(f"memory growth {base['objects']} -> {r['objects']}: {growth:.3f} MB per object")
    return 0


if __name__ == "__main__":
    sys.exit(main())
