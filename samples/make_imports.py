"""Regenerate ``samples/imports/``: existing labels of the sample images, for ``gtaudit demo --from``.

Two deliveries to audit (検品), made from the reference masks in ``samples/reference/`` with a few
deliberate faults, so a demo shows approvals, a rework from the delivered mask, and the refusals:

``coco.json`` (COCO instances; ``file_name`` relative to ``samples/images``)
    astronaut (compressed RLE), camera (uncompressed RLE), coffee (polygons) and chelsea: as the
    references; rocket: the rocket itself left out (the auditor sends it back). Refused:
    chelsea-exif6 (its mask drawn on the stored, un-rotated pixels: orientation), clock (a category
    the run's label set lacks), lighthouse.jpg (no such image), an annotation of an image id the
    file does not list.

``groundtruth.manifest`` + ``masks/`` (Ground Truth's built-in semantic-segmentation output: masks
in the job's own colours and class order, named ``<index>_<timestamp>.png``; ``source-ref`` relative
to ``samples/images``)
    brick, grass, hubble_deep_field (palette PNGs) and horse (an RGB PNG): as the references;
    coins: painted as "animal" (sent back). Refused: clock (Ground Truth gave up on it:
    ``failure-reason``, no mask), coffee (a patch in a colour the colour map lacks), camera (a mask
    of the wrong size), and a line that is not JSON.

Run it with the project's venv (numpy, Pillow, pycocotools, OpenCV: the ``[local]`` extra)::

    .venv/bin/python samples/make_imports.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "layers" / "gtaudit"), str(HERE.parent / "local")]
from gtaudit.labels import DEFAULT_LABELS  # noqa: E402
from gtaudit_local.export.formats import region_polygons  # noqa: E402
from pycocotools import mask as rle  # noqa: E402

OUT = HERE / "imports"
CLASS = {name: i for i, name in enumerate(DEFAULT_LABELS, start=1)}
# The delivering job's own classes and colours: another order and other colours than the run's.
GT_CLASSES = ("BACKGROUND", "building", "plant", "sky", "animal", "object", "person")
GT_COLOURS = ("#ffffff", "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0")
GT_JOB = "labeling-job/delivery-2024-05"
STAMP = "2024-05-01T120000"


def reference(stem: str) -> np.ndarray:
    """The reference mask in the run's classes (index i = DEFAULT_LABELS[i-1]), as displayed."""
    return np.asarray(Image.open(HERE / "reference" / f"{stem}.png"), dtype=np.uint8)


def _rle(binary: np.ndarray) -> dict[str, object]:
    encoded = rle.encode(np.asfortranarray(binary, dtype=np.uint8))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def _uncompressed(binary: np.ndarray) -> dict[str, object]:
    """COCO's uncompressed RLE: run lengths over the column-major pixels, starting with a 0 run."""
    flat = binary.astype(np.uint8).reshape(-1, order="F")
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]]))
    counts = ([0] if flat[0] else []) + [int(r) for r in runs]
    return {"size": list(binary.shape), "counts": counts}


def _polygons(binary: np.ndarray) -> list[list[float]]:
    return [[float(v) for v in poly.reshape(-1)] for poly in region_polygons(binary)]


def coco() -> dict[str, object]:
    """The COCO delivery (see the module docstring)."""
    images: list[dict[str, object]] = []
    annotations: list[dict[str, object]] = []

    def add(file_name: str, classes: np.ndarray, form: str, *, category: dict[int, int] | None = None) -> int:
        image_id = len(images) + 1
        height, width = classes.shape
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        for value in (int(v) for v in np.unique(classes) if v):
            binary = classes == value
            seg = {"rle": _rle, "uncompressed": _uncompressed, "polygons": _polygons}[form](binary)
            cat = (category or {}).get(value, value)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": cat,
                                "segmentation": seg, "area": int(binary.sum()), "iscrowd": 0})  # fmt: skip
        return image_id

    add("astronaut.jpg", reference("astronaut"), "rle")
    add("camera.jpg", reference("camera"), "uncompressed")
    add("chelsea.jpg", reference("chelsea"), "rle")
    add("coffee.jpg", reference("coffee"), "polygons")
    rocket = reference("rocket").copy()
    rocket[rocket == CLASS["vehicle"]] = 0
    add("rocket.jpg", rocket, "rle")
    add("chelsea-exif6.jpg", np.rot90(reference("chelsea-exif6")).copy(), "rle")  # the stored, un-rotated frame
    add("clock.jpg", reference("clock"), "rle", category={CLASS["object"]: 99})
    add("lighthouse.jpg", np.zeros((40, 60), dtype=np.uint8), "rle")
    annotations.append({"id": len(annotations) + 1, "image_id": 404, "category_id": CLASS["object"],
                        "segmentation": _rle(np.ones((40, 60), dtype=bool)), "area": 2400, "iscrowd": 0})  # fmt: skip
    categories = [{"id": i, "name": n, "supercategory": ""} for n, i in CLASS.items()]
    categories.append({"id": 99, "name": "unicorn", "supercategory": ""})
    return {"images": images, "annotations": annotations, "categories": categories}


def gt_mask(classes: np.ndarray, *, rgb: bool = False) -> Image.Image:
    """A mask as Ground Truth's built-in type writes it: the job's class indices, in its colours."""
    lut = np.zeros(256, dtype=np.uint8)
    for i, name in enumerate(GT_CLASSES[1:], start=1):
        lut[CLASS[name]] = i
    indices = lut[classes]
    palette = [c for colour in GT_COLOURS for c in bytes.fromhex(colour[1:])]
    im = Image.fromarray(indices, "P")
    im.putpalette(palette)
    return im.convert("RGB") if rgb else im


def groundtruth() -> list[str]:
    """The manifest's lines; writes the masks (see the module docstring)."""
    (OUT / "masks").mkdir(parents=True, exist_ok=True)
    color_map = {str(i): {"class-name": n, "hex-color": c, "confidence": 0.91}
                 for i, (n, c) in enumerate(zip(GT_CLASSES, GT_COLOURS, strict=True))}  # fmt: skip
    meta = {"internal-color-map": color_map, "type": "groundtruth/semantic-segmentation",
            "human-annotated": "yes", "creation-date": "2024-05-01T12:00:00.000000", "job-name": GT_JOB}  # fmt: skip
    lines: list[str] = []

    def line(stem: str, image: Image.Image | None, ext: str = "jpg") -> None:
        index = len(lines)
        data: dict[str, object] = {"source-ref": f"{stem}.{ext}"}
        if image is None:
            gave_up = {k: v for k, v in meta.items() if k != "internal-color-map"}
            data["delivery-ref-metadata"] = {
                **gave_up,
                "failure-reason": "ClientError: the task expired",
                "retry-count": 1,
            }
        else:
            name = f"{index}_{STAMP}.png"
            image.save(OUT / "masks" / name, optimize=True)
            data.update({"delivery-ref": f"masks/{name}", "delivery-ref-metadata": meta})
        lines.append(json.dumps(data, ensure_ascii=False))

    line("brick", gt_mask(reference("brick")))
    line("grass", gt_mask(reference("grass")))
    line("hubble_deep_field", gt_mask(reference("hubble_deep_field")))
    line("horse", gt_mask(reference("horse"), rgb=True), "png")
    coins = reference("coins").copy()
    coins[coins == CLASS["object"]] = CLASS["animal"]
    line("coins", gt_mask(coins))
    line("clock", None)
    coffee = gt_mask(reference("coffee"), rgb=True)
    coffee.paste((0x12, 0x34, 0x56), (20, 20, 60, 50))
    line("coffee", coffee)
    line("camera", gt_mask(reference("camera")).resize((256, 256), Image.Resampling.NEAREST))
    lines.append('{"source-ref": "astronaut.jpg", "delivery-ref": ')  # cut short: not JSON
    return lines


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in (OUT / "masks").glob("*.png"):
        old.unlink()
    (OUT / "coco.json").write_text(json.dumps(coco(), separators=(",", ":")) + "\n", encoding="utf-8")
    (OUT / "groundtruth.manifest").write_text("".join(f"{x}\n" for x in groundtruth()), encoding="utf-8")


if __name__ == "__main__":
    main()
