"""render_overlay on a 3968x2976 phone-sized photo: time against a floor measured in the same run,
peak RSS of one render in a fresh process, images per second and cost per 1,000 on Lambda.

Floor = Pillow decoding the JPEG + decoding the mask + encoding one JPEG at the same settings
(quality 90, 4:4:4). Goal: render <= 1.5x floor, peak RSS < 300 MB. Exit code 1 if either fails.

    .venv/bin/python benchmarks/bench_overlay.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from gtaudit.overlay.render import DEFAULT_QUALITY, render_overlay
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SIZE = (3968, 2976)  # the seed's real job: a 4:3 phone photo
# Lambda arm64 price, us-east-1, first pricing tier (assumption: no free tier, no Savings Plan).
PRICE_GB_SECOND = 0.0000133334
PRICE_PER_REQUEST = 0.20 / 1_000_000
RATIO_GOAL = 1.5
RSS_GOAL_MB = 300


def make_inputs() -> tuple[bytes, bytes, bytes]:
    """(photo JPEG q90, labeling_post-style P mask PNG, GT built-in-style RGBA mask PNG)."""
    rng = np.random.default_rng(0)
    # A real photo upscaled, plus sensor-like noise so the JPEG costs what a photo costs.
    photo = (
        Image.open(ROOT / "samples" / "images" / "astronaut.jpg").convert("RGB").resize(SIZE, Image.Resampling.BICUBIC)
    )
    arr = np.asarray(photo, dtype=np.int16) + rng.normal(0, 6, (SIZE[1], SIZE[0], 3)).astype(np.int16)
    photo = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    jpeg = io.BytesIO()
    photo.save(jpeg, "JPEG", quality=90)
    mask = Image.open(ROOT / "samples" / "reference" / "astronaut.png").resize(SIZE, Image.Resampling.NEAREST)
    assert mask.mode == "P"
    p_png = io.BytesIO()
    mask.save(p_png, "PNG")
    rgba = mask.convert("RGBA")
    idx = np.asarray(mask)
    a = np.asarray(rgba).copy()
    a[idx == 0] = 0  # transparent background
    rgba_png = io.BytesIO()
    Image.fromarray(a, "RGBA").save(rgba_png, "PNG")
    return jpeg.getvalue(), p_png.getvalue(), rgba_png.getvalue()


def floor(image: bytes, mask: bytes, subsampling: int = 0) -> None:
    """Decode both, encode one JPEG: what any overlay must at least do."""
    im = Image.open(io.BytesIO(image))
    im.load()
    m = Image.open(io.BytesIO(mask))
    m.load()
    im.save(io.BytesIO(), "JPEG", quality=DEFAULT_QUALITY, subsampling=subsampling)


# CPU seconds of this process (Pillow runs these steps on one thread): on a machine shared with
# other jobs, time spent waiting for a core is not counted, so the numbers stay close to what one
# dedicated vCPU does. --wall measures elapsed time instead.
_clock = time.process_time


def best_and_median(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t = _clock()
        fn()
        times.append(_clock() - t)
    return min(times), statistics.median(times)


def interleaved(a: Callable[[], object], b: Callable[[], object], repeat: int) -> tuple[list[float], list[float]]:
    """Run a, b, a, b, ...: on a shared machine both see the same load."""
    ta: list[float] = []
    tb: list[float] = []
    for _ in range(repeat):
        for fn, acc in ((a, ta), (b, tb)):
            t = _clock()
            fn()
            acc.append(_clock() - t)
    return ta, tb


# VmHWM is the peak RSS of this process image; unlike ru_maxrss it does not inherit the parent's
# high-water mark across fork + exec.
CHILD = """
import sys
from pathlib import Path
def hwm():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
from gtaudit.overlay.render import render_overlay
image, mask = Path(sys.argv[1]).read_bytes(), Path(sys.argv[2]).read_bytes()
before = hwm()
out = render_overlay(image, mask)
print(before, hwm(), len(out))
"""


def peak_rss_mb(image: bytes, mask: bytes) -> tuple[float, float]:
    """(peak RSS after imports and reading the inputs, peak RSS after one render) of a fresh process, MB."""
    with tempfile.TemporaryDirectory() as tmp:
        ip, mp = Path(tmp, "i.jpg"), Path(tmp, "m.png")
        ip.write_bytes(image)
        mp.write_bytes(mask)
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(ip), str(mp)], check=True, capture_output=True, text=True
        )
    before, after, _ = (int(x) for x in out.stdout.split())
    return before / 1024, after / 1024  # kB -> MB


def lambda_memory_mb() -> int:
    """The overlay function's MemorySize in template.yaml."""
    try:
        from gtaudit_local.template import load_template

        return load_template(ROOT / "template.yaml").function("OverlayFunction").memory
    except Exception:  # the template is informative here; fall back to one vCPU's worth
        return 1769


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--wall", action="store_true", help="elapsed time instead of CPU time")
    args = parser.parse_args()
    global _clock
    if args.wall:
        _clock = time.perf_counter
    print(f"clock: {'elapsed (wall) time' if args.wall else 'CPU time of this process (one thread)'}")
    image, p_mask, rgba_mask = make_inputs()
    print(f"inputs: {SIZE[0]}x{SIZE[1]} JPEG q90 {len(image) / 1e6:.1f} MB, P mask {len(p_mask) / 1e3:.0f} kB, "
          f"RGBA mask {len(rgba_mask) / 1e3:.0f} kB")  # fmt: skip
    render_overlay(image, p_mask)  # warm-up (imports, allocator)

    f_times, r_times = interleaved(lambda: floor(image, p_mask), lambda: render_overlay(image, p_mask), args.repeat)
    f_best, f_med = min(f_times), statistics.median(f_times)
    r_best, r_med = min(r_times), statistics.median(r_times)
    # The goal is checked on the median of per-pair ratios: each pair ran back to back under the
    # same load, so it holds up on a busy machine; best-of-each is printed beside it.
    pair_ratios = sorted(r / f for f, r in zip(f_times, r_times, strict=True))
    ratio = statistics.median(pair_ratios)
    print(f"floor   (decode JPEG + decode P mask + encode JPEG q90 4:4:4): best {f_best * 1e3:6.0f} ms  "
          f"median {f_med * 1e3:6.0f} ms")  # fmt: skip
    print(f"render_overlay (P mask, opacity 0.5)                        : best {r_best * 1e3:6.0f} ms  "
          f"median {r_med * 1e3:6.0f} ms  -> {ratio:.2f}x floor (median of pairs; goal <= {RATIO_GOAL}x), "
          f"best/best {r_best / f_best:.2f}x")  # fmt: skip

    # For information: other mask kinds and options, each against its own floor.
    fr_best, _ = best_and_median(lambda: floor(image, rgba_mask), 3)
    rr_best, _ = best_and_median(lambda: render_overlay(image, rgba_mask), 3)
    print(f"render_overlay (RGBA mask, transparent background)          : best {rr_best * 1e3:6.0f} ms  "
          f"-> {rr_best / fr_best:.2f}x its floor")  # fmt: skip
    ro_best, _ = best_and_median(lambda: render_overlay(image, p_mask, opacity=0.35, outline=3), 3)
    print(f"render_overlay (P mask, opacity 0.35, outline 3)            : best {ro_best * 1e3:6.0f} ms  "
          f"-> {ro_best / f_best:.2f}x floor (option, not the goal)")  # fmt: skip
    f420, _ = best_and_median(lambda: floor(image, p_mask, subsampling=2), 3)
    print(f"(floor with JPEG 4:2:0 instead of 4:4:4: {f420 * 1e3:.0f} ms; overlays use 4:4:4 for crisp label edges)")

    base_mb, peak_mb = peak_rss_mb(image, p_mask)
    print(f"peak RSS of one render in a fresh process: {peak_mb:.0f} MB "
          f"({base_mb:.0f} MB before rendering; goal < {RSS_GOAL_MB} MB)")  # fmt: skip

    memory = lambda_memory_mb()
    vcpu = min(memory / 1769, 1.0)  # Lambda gives one full vCPU at 1,769 MB; rendering uses one
    seconds = r_med / vcpu
    per_1000 = 1000 * (seconds * memory / 1024 * PRICE_GB_SECOND + PRICE_PER_REQUEST)
    print(
        json.dumps(
            {
                "images_per_second_one_vcpu": round(1 / r_med, 2),
                "lambda_memory_mb": memory,
                "cost_per_1000_images_usd": round(per_1000, 4),
                "assumptions": "render CPU time only (median; one core here ~ one Lambda vCPU; S3 transfer "
                "excluded, mostly overlapped by OVERLAY_THREADS=2), arm64 $0.0000133334/GB-s + $0.20/M requests, "
                "one request per image (S3 event path)",
            }
        )
    )
    ok = ratio <= RATIO_GOAL and peak_mb < RSS_GOAL_MB
    print("OK" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
