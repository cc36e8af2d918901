"""render_overlay on a 3968x2976 phone photo, side by side with its peers, as ratios to a floor
measured in the same run; then the peak RSS of one render in a fresh process.

Every contestant turns the same JPEG q90 and P mask into a JPEG q90 4:4:4 of the photo with the
labels blended at opacity 128/255 (background kept):

- floor: Pillow decoding the JPEG and the mask and encoding one JPEG, the work no overlay avoids;
- gtaudit: ``render_overlay``;
- OpenCV: ``imdecode`` both, ``inRange`` (background) + ``addWeighted`` + ``copyTo``, ``imencode``
  (one thread: ``cv2.setNumThreads(1)``, as one Lambda vCPU);
- numpy: Pillow decoding and encoding, the blend in numpy on the labelled pixels;
- pyvips: when it is installed (``VIPS_CONCURRENCY=1``), ``ifthenelse`` of the linear blend;
- ``--baseline REF``: gtaudit's ``render.py`` as of a git revision, for before/after in one run.

Rounds are interleaved (floor, gtaudit, peers, floor, ...) so that every contestant sees the same
load; a ratio is the median over rounds of (contestant / floor of the same round). Each peer's
picture is compared with gtaudit's (mean absolute difference of the decoded pixels) so that a fast
peer is known to draw the same overlay.

Goals: gtaudit <= 1.5x the floor and ahead of every peer; peak RSS < 300 MB. Exit code 1 if missed.
The Lambda's cost per 1,000 images, S3 requests included, is ``bench_overlay_cost.py``.

    .venv/bin/python benchmarks/bench_overlay.py [--repeat 9] [--baseline HEAD] [--wall]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from gtaudit.overlay.render import DEFAULT_QUALITY, render_overlay
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SIZE = (3968, 2976)  # the seed's real job: a 4:3 phone photo
ALPHA8 = 128  # opacity 0.5 as render_overlay rounds it
RATIO_GOAL = 1.5
RSS_GOAL_MB = 300

Contestant = Callable[[bytes, bytes], bytes]


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


def pillow_jpeg(im: Image.Image, subsampling: int = 0) -> bytes:
    out = io.BytesIO()
    im.save(out, "JPEG", quality=DEFAULT_QUALITY, subsampling=subsampling)
    return out.getvalue()


def floor(image: bytes, mask: bytes, subsampling: int = 0) -> bytes:
    """Decode both, encode one JPEG: what any overlay must at least do."""
    im = Image.open(io.BytesIO(image))
    im.load()
    m = Image.open(io.BytesIO(mask))
    m.load()
    return pillow_jpeg(im, subsampling)


def opencv_peer() -> Contestant | None:
    """OpenCV as its users write an overlay, or None when it is not installed."""
    try:
        import cv2
    except ImportError:
        return None
    cv2.setNumThreads(1)
    weight = ALPHA8 / 255
    params = [cv2.IMWRITE_JPEG_QUALITY, DEFAULT_QUALITY, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, 0x111111]  # 4:4:4

    def overlay(image: bytes, mask: bytes) -> bytes:
        im = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
        colours = cv2.imdecode(np.frombuffer(mask, np.uint8), cv2.IMREAD_COLOR)
        assert im is not None and colours is not None
        labelled = cv2.bitwise_not(cv2.inRange(colours, (255, 255, 255), (255, 255, 255)))
        blended = cv2.addWeighted(im, 1 - weight, colours, weight, 0)
        cv2.copyTo(blended, labelled, im)
        ok, buf = cv2.imencode(".jpg", im, params)
        assert ok
        return buf.tobytes()

    return overlay


def numpy_overlay(image: bytes, mask: bytes) -> bytes:
    """Pillow decodes and encodes; numpy blends the labelled pixels."""
    rgb = np.array(Image.open(io.BytesIO(image)).convert("RGB"))
    m = Image.open(io.BytesIO(mask))
    idx = np.asarray(m)
    palette = np.zeros((256, 3), np.uint16)
    entries = np.array(m.getpalette("RGB") or [], np.uint16).reshape(-1, 3)
    palette[: len(entries)] = entries
    labelled = (palette != 255).any(axis=1)[idx]
    old = rgb[labelled].astype(np.uint16)
    rgb[labelled] = ((old * (255 - ALPHA8) + palette[idx[labelled]] * ALPHA8 + 127) // 255).astype(np.uint8)
    return pillow_jpeg(Image.fromarray(rgb))


def pyvips_peer() -> Contestant | None:
    """libvips through pyvips on one thread, or None when it is not installed."""
    os.environ.setdefault("VIPS_CONCURRENCY", "1")
    try:
        import pyvips
    except (ImportError, OSError):
        return None
    pyvips.cache_set_max(0)  # the same input every round: no cached results
    weight = ALPHA8 / 255

    def overlay(image: bytes, mask: bytes) -> bytes:
        im = pyvips.Image.new_from_buffer(image, "", access="sequential")
        colours = pyvips.Image.new_from_buffer(mask, "", access="sequential")[0:3]
        labelled = (colours != [255, 255, 255]).bandor()
        blended = (im * (1 - weight) + colours * weight + 0.5).cast("uchar")
        out = labelled.ifthenelse(blended, im)
        return bytes(out.jpegsave_buffer(Q=DEFAULT_QUALITY, subsample_mode="off"))

    return overlay


def module_at(ref: str) -> ModuleType:
    """``gtaudit.overlay.render`` as of git revision ``ref``, loaded beside the current one."""
    path = "layers/gtaudit/gtaudit/overlay/render.py"
    source = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=ROOT, check=True, capture_output=True).stdout
    with tempfile.NamedTemporaryFile("wb", suffix=".py", delete=False) as tmp:
        tmp.write(source)
    name = f"render_at_{ref}".replace("~", "_").replace("^", "_")
    spec = importlib.util.spec_from_file_location(name, tmp.name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    Path(tmp.name).unlink()
    return module


# CPU seconds of the process: on a machine shared with other jobs, time spent waiting for a core
# is not counted, so the numbers stay close to what one dedicated vCPU does. Every contestant runs
# on one thread. --wall measures elapsed time instead.
_clock = time.process_time

# name -> (the contestant, or None when its library is missing; the mask it blends)
MASKS = ("p", "rgba")


def contestant(name: str, baseline: str | None) -> tuple[Contestant | None, str]:
    """The contestant called ``name`` and the mask kind it takes."""
    if name == f"gtaudit@{baseline}":
        return module_at(str(baseline)).render_overlay, "p"
    table: dict[str, tuple[Callable[[], Contestant | None], str]] = {
        "floor": (lambda: floor, "p"),
        "gtaudit": (lambda: render_overlay, "p"),
        "OpenCV": (opencv_peer, "p"),
        "numpy": (lambda: numpy_overlay, "p"),
        "pyvips": (pyvips_peer, "p"),
        "floor, RGBA mask": (lambda: floor, "rgba"),
        "gtaudit, RGBA mask": (lambda: render_overlay, "rgba"),
        "gtaudit, outline 3": (lambda: lambda i, m: render_overlay(i, m, opacity=0.35, outline=3), "p"),
    }
    factory, mask = table[name]
    return factory(), mask


def hwm_kb() -> int:
    """VmHWM: the peak RSS of this process image (unlike ru_maxrss, not inherited across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def child(name: str, folder: Path, repeat: int, baseline: str | None) -> dict[str, object]:
    """Time one contestant in this fresh process: warm-up twice, then ``repeat`` runs."""
    fn, mask_kind = contestant(name, baseline)
    assert fn is not None
    image, mask = (folder / "image.jpg").read_bytes(), (folder / f"{mask_kind}.png").read_bytes()
    before = hwm_kb()
    (folder / f"{name}.jpg").write_bytes(fn(image, mask))
    fn(image, mask)  # the allocator's steady state, as in a warm Lambda
    times = []
    for _ in range(repeat):
        t = _clock()
        fn(image, mask)
        times.append(_clock() - t)
    return {"times": times, "hwm_before_kb": before, "hwm_kb": hwm_kb()}


def mean_difference(a: bytes, b: bytes) -> float:
    """Mean absolute difference of two encoded pictures' decoded pixels (0-255)."""
    pa, pb = (np.asarray(Image.open(io.BytesIO(x)).convert("RGB"), np.int16) for x in (a, b))
    return float(np.abs(pa - pb).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of one process per contestant")
    parser.add_argument("--repeat", type=int, default=5, help="timed renders per process")
    parser.add_argument("--baseline", metavar="REF", help="also time render.py as of this git revision")
    parser.add_argument("--wall", action="store_true", help="elapsed time instead of CPU time")
    parser.add_argument("--pillow-blocks", type=int, metavar="N", help="run with PILLOW_BLOCKS_MAX=N (block cache)")
    parser.add_argument("--child", nargs=2, metavar=("NAME", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    global _clock
    if args.wall:
        _clock = time.perf_counter
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), args.repeat, args.baseline)))
        return 0
    print(f"clock: {'elapsed (wall) time' if args.wall else 'CPU time'}, one thread each; one process per contestant "
          f"and round ({args.rounds} rounds of {args.repeat} renders after 2 warm-ups)")  # fmt: skip
    names = ["floor", "gtaudit"] + ([f"gtaudit@{args.baseline}"] if args.baseline else [])
    for name in ("OpenCV", "numpy", "pyvips"):
        if contestant(name, None)[0] is None:
            print(f"({name} is not installed: not measured)")
        else:
            names.append(name)
    options = ["floor, RGBA mask", "gtaudit, RGBA mask", "gtaudit, outline 3"]
    env = dict(os.environ)
    if args.pillow_blocks is not None:  # read by Pillow when it is imported, so set for the children
        env["PILLOW_BLOCKS_MAX"] = str(args.pillow_blocks)
        print(f"Pillow's block cache: PILLOW_BLOCKS_MAX={args.pillow_blocks} in every contestant's process")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        image, p_mask, rgba_mask = make_inputs()
        for file, data in (("image.jpg", image), ("p.png", p_mask), ("rgba.png", rgba_mask)):
            (folder / file).write_bytes(data)
        print(f"inputs: {SIZE[0]}x{SIZE[1]} JPEG q90 {len(image) / 1e6:.1f} MB, P mask {len(p_mask) / 1e3:.0f} kB, "
              f"RGBA mask {len(rgba_mask) / 1e3:.0f} kB; output JPEG q90 4:4:4, opacity {ALPHA8}/255")  # fmt: skip
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in names + options}
        for _ in range(args.rounds):  # every round runs every contestant once, so all see the same load
            for name in results:
                cmd = [sys.executable, __file__, "--child", name, tmp, "--repeat", str(args.repeat)]
                cmd += (["--baseline", args.baseline] if args.baseline else []) + (["--wall"] if args.wall else [])
                proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
                results[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        pictures = {name: (folder / f"{name}.jpg").read_bytes() for name in names}

    def ratio(name: str, floor_name: str = "floor") -> float:
        """Median over rounds of (this contestant's median / the floor's median in the same round)."""
        pairs = zip(results[name], results[floor_name], strict=True)
        return statistics.median(statistics.median(r["times"]) / statistics.median(f["times"]) for r, f in pairs)

    print(f"\n{'P mask -> JPEG':<18} {'best ms':>8} {'median ms':>10} {'x floor':>8}  picture vs gtaudit")
    for name in names:
        times = [t for r in results[name] for t in r["times"]]
        same = (
            ""
            if name in ("floor", "gtaudit")
            else f"  mean |diff| {mean_difference(pictures[name], pictures['gtaudit']):.2f}"
        )
        print(f"{name:<18} {min(times) * 1e3:8.0f} {statistics.median(times) * 1e3:10.0f} {ratio(name):8.2f}{same}")
    ours = ratio("gtaudit")
    rivals = [name for name in names if name not in ("floor", "gtaudit") and not name.startswith("gtaudit@")]
    behind = [name for name in rivals if ratio(name) <= ours]
    print(f"gtaudit {ours:.2f}x the floor (goal <= {RATIO_GOAL}x); "
          + ("ahead of every peer" if not behind else f"NOT ahead of {', '.join(behind)}"))  # fmt: skip
    for name in rivals + ([f"gtaudit@{args.baseline}"] if args.baseline else []):
        print(f"  {name}: gtaudit takes {ours / ratio(name):.2f} of its time")
    # For information: the built-in type's RGBA mask and an outline, each against its own floor.
    rgba = ratio("gtaudit, RGBA mask", "floor, RGBA mask")
    outline = ratio("gtaudit, outline 3")
    print(f"render_overlay, RGBA mask (transparent background): {rgba:.2f}x its floor; "
          f"P mask, opacity 0.35 + outline 3: {outline:.2f}x (options, not the goal)")  # fmt: skip

    peak_mb = max(r["hwm_kb"] for r in results["gtaudit"]) / 1024
    base_mb = max(r["hwm_before_kb"] for r in results["gtaudit"]) / 1024
    print(f"peak RSS of a process rendering {args.repeat + 2} overlays: {peak_mb:.0f} MB "
          f"({base_mb:.0f} MB before rendering; goal < {RSS_GOAL_MB} MB)")  # fmt: skip
    ok = ours <= RATIO_GOAL and not behind and peak_mb < RSS_GOAL_MB
    print("OK" if ok else "GOAL MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
