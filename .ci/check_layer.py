"""After `sam build`: what each built layer holds, its size, and that no local-wing code is in it.

Usage: python3 .ci/check_layer.py [.aws-sam/build]. Exits 1 if a layer carries the local wing
(gtaudit_local), the embedded AWS (moto), the browser tools (playwright) or the crowd element scripts.
"""

from __future__ import annotations

import sys
from pathlib import Path

FORBIDDEN = ("gtaudit_local", "moto", "playwright", "liquid", "crowd-elements.js", "crowd-segmentation.js")


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> int:
    build = Path(sys.argv[1] if len(sys.argv) > 1 else ".aws-sam/build")
    bad = []
    for layer in sorted(p for p in build.iterdir() if p.is_dir() and p.name.endswith("Layer")):
        site = layer / "python"
        tops = sorted(p.name for p in site.iterdir() if not p.name.endswith((".dist-info", "__pycache__")))
        print(f"{layer.name}: {size(layer) / 1e6:.1f} MB, {len(tops)} top-level entries")
        print("  " + " ".join(tops))
        if (site / "gtaudit").is_dir():
            files = [p for p in (site / "gtaudit").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
            lines = sum(len(p.read_bytes().splitlines()) for p in files if p.suffix == ".py")
            print(f"  gtaudit: {len(files)} files, {lines} lines of Python, {size(site / 'gtaudit') / 1e3:.0f} kB")
        bad += [str(p.relative_to(build)) for name in FORBIDDEN for p in site.rglob(name)]
    if bad:
        print("local-wing code in a layer:\n  " + "\n  ".join(bad), file=sys.stderr)
        return 1
    print("no local-wing code (gtaudit_local, moto, playwright, liquid, crowd assets) in any layer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
