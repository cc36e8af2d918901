"""Regenerate ``samples/gold/``: images whose correct masks are known, to score the demo's labelers.

Each gold image is a mirrored (and some a cropped) copy of a sample image, and its mask the same
transform of the sample's reference mask, so the mask is exactly right for the new image by
construction. They are new pictures to a labeler (another name, the other way round, another frame),
and the scripted workers find their references among the gold masks as a person finds the truth
in the photo.

Layout, the "images + masks" folder that ``gtaudit start --gold`` and ``gtaudit demo --gold`` read
(``gtaudit_local.imports.folders``)::

    gold/images/<name>.jpg|png   the picture, in its displayed orientation (no EXIF)
    gold/masks/<name>.png        8-bit indexed: 0 BACKGROUND, i = label i of DEFAULT_LABELS
    gold/legend.json             {"<value>": {"name", "color"}}: masks are matched to a run's
                                 labels by name, whatever their order

Run it with the project's venv (numpy and Pillow), after ``make_samples.py`` if that ran::

    .venv/bin/python samples/make_gold.py
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "layers" / "gtaudit"))
from gtaudit.labels import DEFAULT_LABELS, LabelSet  # noqa: E402

OUT = HERE / "gold"
LABELS = LabelSet.from_names(DEFAULT_LABELS)


@dataclass(frozen=True)
class Gold:
    """One gold image: its name, the sample it comes from, and the crop (fractions of the frame) before the mirror."""

    name: str
    sample: str
    crop: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)  # left, top, right, bottom


# Names that say nothing of where the picture comes from: a gold task must look like any other.
GOLD: tuple[Gold, ...] = (
    Gold("portrait.jpg", "astronaut.jpg"),
    Gold("cameraman.jpg", "camera.jpg", (0.0, 0.0, 1.0, 0.85)),
    Gold("tabby.jpg", "chelsea.jpg", (0.1, 0.0, 0.95, 1.0)),
    Gold("wall-clock.jpg", "clock.jpg"),
    Gold("espresso.jpg", "coffee.jpg", (0.05, 0.1, 0.9, 1.0)),
    Gold("coin-tray.jpg", "coins.jpg"),
    Gold("pony.png", "horse.png"),
    Gold("launch.jpg", "rocket.jpg", (0.1, 0.0, 1.0, 1.0)),
)


def _transform(im: Image.Image, crop: tuple[float, float, float, float]) -> Image.Image:
    w, h = im.size
    left, top, right, bottom = crop
    box = (round(left * w), round(top * h), round(right * w), round(bottom * h))
    return ImageOps.mirror(im.crop(box))


def make(gold: Gold) -> None:
    """Write one gold image and its mask."""
    stem = Path(gold.sample).stem
    with Image.open(HERE / "images" / gold.sample) as im:
        picture = _transform(ImageOps.exif_transpose(im), gold.crop)
    with Image.open(HERE / "reference" / f"{stem}.png") as ref:
        if ref.mode != "P":
            raise ValueError(f"reference {stem}.png must be an indexed PNG, got {ref.mode}")
        mask = _transform(ref, gold.crop)  # a palette image: crop and mirror move indices, never blend them
    if picture.size != mask.size:
        raise ValueError(f"{gold.name}: picture {picture.size} and mask {mask.size} differ")
    path = OUT / "images" / gold.name
    if path.suffix == ".png":
        picture.save(path, optimize=True)
    else:
        picture.save(path, quality=90, optimize=True)
    mask.save(OUT / "masks" / f"{path.stem}.png", optimize=True)


def main() -> None:
    for sub in ("images", "masks"):
        (OUT / sub).mkdir(parents=True, exist_ok=True)
        for old in (OUT / sub).iterdir():
            old.unlink()
    for gold in GOLD:
        make(gold)
    legend = {str(i): {"name": lb.name, "color": lb.color} for i, lb in enumerate(LABELS.labels, start=1)}
    (OUT / "legend.json").write_text(json.dumps(legend, indent=1) + "\n", encoding="utf-8")
    # Check what was written: every mask's values are classes of the legend, and one mask per image.
    for gold in GOLD:
        values = np.unique(np.asarray(Image.open(OUT / "masks" / f"{Path(gold.name).stem}.png")))
        assert set(values.tolist()) <= {0, *map(int, legend)}, (gold.name, values)


if __name__ == "__main__":
    main()
