"""The default demo (sample images, 2 labelers per object, 1 auditor) against its 60 s budget.

Prints the time of every stage, the total as a ratio to the runtime's own fixed cost (starting and
stopping moto, the GT emulator and the Lambda service with no work, measured in this run) and to
the 60 s budget, and the peak RSS of this process and of its Lambda worker processes.

    .venv/bin/python benchmarks/bench_demo.py
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

from gtaudit_local.demo import run_demo
from gtaudit_local.runtime import LocalRuntime, find_project_root

BUDGET_S = 60.0


def main() -> int:
    root = find_project_root(Path(__file__).resolve().parent)
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        # Warm the imports and moto's backends once, as a set-up machine would have them.
        with LocalRuntime(root, work_dir=Path(tmp, "warm")):
            pass
        t = time.perf_counter()
        with LocalRuntime(root, work_dir=Path(tmp, "floor")):
            pass
        floor = time.perf_counter() - t
        t = time.perf_counter()
        result = run_demo(Path(tmp, "out"), project=root, log=lambda _line: None)
        total = time.perf_counter() - t
    s = result.summary
    print(f"{'stage':<60} {'seconds':>8}")
    for stage, seconds in s["timings-seconds"].items():
        print(f"{stage:<60} {seconds:>8.2f}")
    c = s["counts"]
    print(f"\njobs: {len(s['jobs'])}, objects in {c['objects-in']} = approved {c['approved']} + needing attention "
          f"{c['needing-attention']} + failed {c['failed']} (adds up: {c['adds-up']})")  # fmt: skip
    print(f"floor (runtime start + stop, no work): {floor:.2f} s")
    share = total / BUDGET_S
    print(f"demo total: {total:.2f} s = {total / floor:.1f}x the floor, {share:.0%} of the {BUDGET_S:.0f} s budget")
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: runtime process {self_mb:.0f} MB, largest Lambda worker {child_mb:.0f} MB")
    return 0 if total < BUDGET_S and c["adds-up"] else 1


if __name__ == "__main__":
    sys.exit(main())
