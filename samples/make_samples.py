"""Regenerate the sample images, their reference masks and NOTICE from scikit-image's bundled data.

This is a maintainer's tool, not part of the product: its outputs are committed, and nothing in
gtaudit imports it. It needs scikit-image (with SciPy and Pillow), which is deliberately *not* a
project dependency, so run it from a scratch virtual environment outside the repository::

    /root/.pyenv/versions/3.13.0/bin/python3.13 -m venv /tmp/skvenv
    /tmp/skvenv/bin/pip install scikit-image
    /tmp/skvenv/bin/python samples/make_samples.py [--sheet /tmp/samples-sheet.png]

Only images bundled inside the scikit-image wheel are used (nothing is fetched through pooch), and
only those whose docstring states a licence that allows redistribution (see ``NOTICE``).

Reference masks are 8-bit indexed PNGs: index 0 BACKGROUND, index i the i-th label of
``gtaudit.labels.DEFAULT_LABELS``, palette from ``LabelSet.color_map()``, in the displayed (EXIF
applied) orientation. They come from the hand-authored shapes in ``shapes.json`` (boundaries
snapped to image edges with a random walker), from a classical watershed for the coins and from
the silhouette itself for the horse. ``--sheet`` renders every reference over its image to one
contact sheet so a person can check them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps
from scipy import ndimage as ndi
from skimage import data as skdata
from skimage import filters, morphology, segmentation

HERE = Path(__file__).resolve().parent
# The script runs outside the project's venv; read the label set from the package source itself.
sys.path.insert(0, str(HERE.parent / "layers" / "gtaudit"))
from gtaudit.labels import DEFAULT_LABELS, LabelSet  # noqa: E402

LABELS = LabelSet.from_names(DEFAULT_LABELS)
INDEX = {name: i for i, name in enumerate(LABELS.names, start=1)}
MAX_SIDE = 640
EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Source:
    """One sample: output stem, skimage loader, file format and the NOTICE entry."""

    stem: str
    loader: str
    fmt: str
    notice: str


SOURCES: tuple[Source, ...] = (
    Source("astronaut", "astronaut", "jpg",
           "Eileen Collins, NASA portrait (NASA Great Images, https://flic.kr/p/r9qvLn). "
           "No known copyright restrictions, released into the public domain."),
    Source("camera", "camera", "jpg", "Cameraman. CC0 by the photographer (Lav Varshney)."),
    Source("chelsea", "chelsea", "jpg", "Chelsea the cat. CC0 by the photographer (Stefan van der Walt)."),
    Source("chelsea-exif6", "chelsea", "jpg",
           "Chelsea the cat, stored rotated with EXIF Orientation=6 like a phone photo. "
           "CC0 by the photographer (Stefan van der Walt)."),
    Source("coffee", "coffee", "jpg",
           "Coffee cup, courtesy of Pikolo Espresso Bar. CC0 by the photographer (Rachel Michetti)."),
    Source("coins", "coins", "jpg",
           "Greek coins from Pompeii, Brooklyn Museum Collection "
           "(https://www.brooklynmuseum.org/opencollection/archives/image/51611). No known copyright restrictions."),
    Source("rocket", "rocket", "jpg",
           "Launch of DSCOVR on Falcon 9, SpaceX Photos "
           "(https://www.flickr.com/photos/spacexphotos/16511594820/). Released into the public domain by SpaceX."),
    Source("hubble_deep_field", "hubble_deep_field", "jpg",
           "Hubble eXtreme Deep Field, NASA (HubbleSite, release 2012/37). Public domain (NASA media guidelines)."),
    Source("clock", "clock", "jpg",
           "Motion-blurred wall clock. Released into the public domain by the photographer (Stefan van der Walt)."),
    Source("grass", "grass", "jpg",
           "Grass (DeviantArt, linolafett, 'Grass 01'), cropped and converted to grey by scikit-image. CC0."),
    Source("brick", "brick", "jpg",
           "Brick wall (CC0Textures 'Bricks25'), perspective-corrected and cropped by scikit-image. CC0."),
    Source("horse", "horse", "png",
           "Horse silhouette (openclipart 158377, Andreas Preuss 'marauder'). CC0. A drawing, kept as PNG."),
)  # fmt: skip


def load_displayed(loader: str) -> Image.Image:
    """The bundled image as a Pillow image, at most ``MAX_SIDE`` pixels on its long side."""
    arr = getattr(skdata, loader)()
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    img = Image.fromarray(arr)
    img = img.convert("L") if img.mode in {"L", "1", "I;16"} else img.convert("RGB")
    if max(img.size) > MAX_SIDE:
        img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return img


def paint_shapes(classes: np.ndarray | None, size: tuple[int, int], spec: dict, *, raw: bool) -> np.ndarray:
    """Rasterise the shapes with ``raw`` set as given over ``classes`` (or a fresh map); later shapes win."""
    if classes is None:
        canvas = Image.new("L", size, INDEX[spec["fill"]] if spec.get("fill") else 0)
    else:
        canvas = Image.fromarray(classes)
    draw = ImageDraw.Draw(canvas)
    for shape in spec["shapes"]:
        if bool(shape.get("raw")) != raw:
            continue
        value = INDEX[shape["label"]]
        if "polygon" in shape:
            draw.polygon([tuple(p) for p in shape["polygon"]], fill=value)
        elif "ellipse" in shape:
            cx, cy, rx, ry = shape["ellipse"]
            draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=value)
        elif "line" in shape:
            draw.line([tuple(p) for p in shape["line"]], fill=value, width=shape["width"])
        else:
            raise ValueError(f"unknown shape {shape!r}")
    return np.asarray(canvas, dtype=np.uint8).copy()


def refine(image: Image.Image, classes: np.ndarray, band: int) -> np.ndarray:
    """Snap class boundaries to image edges: random walker inside a ``band``-pixel strip around them."""
    if band <= 0:
        return classes
    edge = np.zeros(classes.shape, dtype=bool)
    edge[:-1, :] |= classes[:-1, :] != classes[1:, :]
    edge[1:, :] |= classes[:-1, :] != classes[1:, :]
    edge[:, :-1] |= classes[:, :-1] != classes[:, 1:]
    edge[:, 1:] |= classes[:, :-1] != classes[:, 1:]
    if not edge.any():
        return classes
    strip = ndi.binary_dilation(edge, iterations=band)
    seeds = classes.astype(np.int32) + 1
    seeds[strip] = 0
    pixels = np.asarray(image, dtype=np.float64) / 255.0
    channel_axis = -1 if pixels.ndim == 3 else None
    pixels = filters.gaussian(pixels, sigma=1.0, channel_axis=channel_axis)
    walked = segmentation.random_walker(pixels, seeds, beta=250, mode="cg_j", channel_axis=channel_axis)
    # random_walker numbers its result 1..n in the order of the distinct seed values: map back.
    present = np.unique(seeds[seeds > 0])
    out = (present[walked - 1] - 1).astype(np.uint8)
    return clean(out, min_size=max(20, band * band))


def clean(classes: np.ndarray, min_size: int) -> np.ndarray:
    """Give islands smaller than ``min_size`` pixels to the class that surrounds them."""
    out = classes.copy()
    for value in np.unique(classes):
        comps, n = ndi.label(classes == value)
        if n <= 1:
            continue
        sizes = ndi.sum_labels(np.ones_like(comps), comps, index=np.arange(1, n + 1))
        for comp_index in np.flatnonzero(sizes < min_size) + 1:
            blob = comps == comp_index
            ring = ndi.binary_dilation(blob, iterations=2) & ~blob
            around = out[ring]
            if around.size:
                out[blob] = np.bincount(around).argmax()
    return out


def coins_reference(image: Image.Image) -> np.ndarray:
    """Coins by watershed on the Sobel elevation map (scikit-image's own coins tutorial), tidied."""
    grey = np.asarray(image, dtype=np.uint8)
    elevation = filters.sobel(grey)
    markers = np.zeros(grey.shape, dtype=np.int32)
    markers[grey < 30] = 1
    markers[grey > 150] = 2
    regions = segmentation.watershed(elevation, markers) == 2
    regions = ndi.binary_fill_holes(regions)
    regions = morphology.remove_small_objects(regions, max_size=60)
    regions = morphology.opening(regions, morphology.disk(2))
    return np.where(regions, INDEX["object"], 0).astype(np.uint8)


def horse_reference(image: Image.Image) -> np.ndarray:
    """The silhouette is the horse."""
    return np.where(np.asarray(image) < 128, INDEX["animal"], 0).astype(np.uint8)


def reference_for(stem: str, loader: str, image: Image.Image, shapes: dict) -> np.ndarray:
    """The class-index map for one displayed image."""
    if loader == "coins":
        return coins_reference(image)
    if loader == "horse":
        return horse_reference(image)
    spec = shapes[loader]
    # Thin parts (tripod legs) would vanish in the refinement band, so they are painted after it.
    classes = refine(image, paint_shapes(None, image.size, spec, raw=False), int(spec.get("refine", 0)))
    return paint_shapes(classes, image.size, spec, raw=True)


def mask_png(classes: np.ndarray) -> Image.Image:
    """An indexed PNG with GT's colour-map palette (0 BACKGROUND white)."""
    height, width = classes.shape
    mask = Image.frombytes("P", (width, height), np.ascontiguousarray(classes, dtype=np.uint8).tobytes())
    palette: list[int] = []
    for entry in LABELS.color_map().values():
        c = entry["hex-color"]
        palette += [int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)]
    mask.putpalette(palette)
    return mask


def save_image(img: Image.Image, path: Path, fmt: str, *, orientation: int = 1) -> None:
    """JPEG q90 (optionally stored rotated with an EXIF Orientation tag) or PNG."""
    if fmt == "png":
        img.save(path, format="PNG", optimize=True)
        return
    exif = Image.Exif()
    if orientation == 6:
        # Orientation 6: the viewer rotates 90° clockwise, so store the picture 90° counter-clockwise.
        img = img.transpose(Image.Transpose.ROTATE_90)
        exif[EXIF_ORIENTATION] = 6
    img.save(path, format="JPEG", quality=90, exif=exif.tobytes() if orientation != 1 else b"")


def contact_sheet(rows: list[tuple[str, Image.Image, np.ndarray]], path: Path) -> None:
    """Every reference over its image (50 % opacity), four to a row, with the stem written on top."""
    cell = 320
    cols = 4
    sheet = Image.new("RGB", (cols * cell, ((len(rows) + cols - 1) // cols) * cell), "black")
    palette = mask_png(np.zeros((1, 1), np.uint8)).getpalette() or []
    lut = np.array(palette[: 3 * 256] + [0] * max(0, 768 - len(palette)), dtype=np.uint8).reshape(-1, 3)
    for i, (stem, img, classes) in enumerate(rows):
        base = np.asarray(img.convert("RGB"), dtype=np.float32)
        colour = lut[classes].astype(np.float32)
        alpha = np.where(classes > 0, 0.5, 0.0)[..., None]
        blended = Image.fromarray((base * (1 - alpha) + colour * alpha).astype(np.uint8))
        blended.thumbnail((cell - 4, cell - 20))
        x, y = (i % cols) * cell, (i // cols) * cell
        sheet.paste(blended, (x + 2, y + 18))
        ImageDraw.Draw(sheet).text((x + 4, y + 2), stem, fill="yellow")
    sheet.save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheet", type=Path, help="write a contact sheet of references over images here")
    args = parser.parse_args(argv)
    shapes = json.loads((HERE / "shapes.json").read_text(encoding="utf-8"))
    (HERE / "images").mkdir(exist_ok=True)
    (HERE / "reference").mkdir(exist_ok=True)
    rows = []
    for src in SOURCES:
        displayed = load_displayed(src.loader)
        classes = reference_for(src.stem, src.loader, displayed, shapes)
        orientation = 6 if src.stem.endswith("-exif6") else 1
        path = HERE / "images" / f"{src.stem}.{src.fmt}"
        save_image(displayed, path, src.fmt, orientation=orientation)
        with Image.open(path) as check:  # the file must display as the reference is drawn
            shown = ImageOps.exif_transpose(check)
            if shown.size != displayed.size:
                raise AssertionError(f"{path.name}: displays as {shown.size}, reference is {displayed.size}")
        mask_png(classes).save(HERE / "reference" / f"{src.stem}.png", optimize=True)
        present = sorted(LABELS.names[v - 1] for v in np.unique(classes) if v)
        print(f"{path.name:24} {displayed.size[0]}x{displayed.size[1]} {displayed.mode:3} {', '.join(present)}")
        rows.append((src.stem, displayed, classes))
    notice = [
        "Sample images in samples/images/ come from the data bundled with scikit-image 0.26",
        "(https://scikit-image.org, skimage/data/), resized to at most 640 px on the long side and",
        "re-encoded by samples/make_samples.py. Sources and licences, as stated in scikit-image's",
        "skimage/data/_fetchers.py docstrings:",
        "",
        *(f"{src.stem}.{src.fmt}: {src.notice}" for src in SOURCES),
        "",
        "The gold images in samples/gold/images/ are mirrored (some also cropped) copies of the images",
        "above, made by samples/make_gold.py (its GOLD table names the source of each), under the same",
        "sources and licences.",
        "",
        "The reference masks in samples/reference/ and samples/shapes.json, and the gold masks in",
        "samples/gold/masks/ made from them, were made for this project and are released under the",
        "project's licence (Apache-2.0).",
    ]
    (HERE / "NOTICE").write_text("\n".join(notice) + "\n", encoding="utf-8")
    if args.sheet:
        contact_sheet(rows, args.sheet)
        print(f"contact sheet: {args.sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
