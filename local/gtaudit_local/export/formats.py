"""The four layouts an export writes, one function each, all from the same :class:`Dataset`.

======== ===========================================================================================
coco     ``annotations.json`` (COCO instances: one RLE annotation per image and class, made by
         ``pycocotools.mask.encode``) and ``images/``
voc      ``JPEGImages/``, ``SegmentationClass/<stem>.png`` (index masks with the VOC palette),
         ``ImageSets/Segmentation/train.txt`` and ``labels.txt`` (line i is class i)
masks    ``masks/<stem>.png`` (8-bit grey, value = class id), ``colour/<stem>.png`` (RGB in the
         colour map's colours) and ``legend.json``
yolo-seg ``images/``, ``labels/<stem>.txt`` (``class x1 y1 x2 y2 ...`` normalised to 0..1, one line
         per region) and ``data.yaml``
======== ===========================================================================================

Each writer takes the categories and the samples (read one at a time by
:meth:`Dataset.samples`) and goes through the samples once.

Class ids are the dataset's category ids (background 0) everywhere except YOLO, whose ids start
at 0 over the categories. YOLO polygons trace each class's connected regions with OpenCV's
``findContours`` (outer borders only, as Ultralytics' own mask converter does: YOLO-seg has no
holes), so they are approximate; the other formats are pixel-exact.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from gtaudit.labeling.masks import encode_mask
from gtaudit.labels import BACKGROUND, BACKGROUND_COLOR, hex_to_rgb
from PIL import Image

from gtaudit_local.export.dataset import Category, Sample


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _folders(out: Path, *names: str) -> list[Path]:
    folders = [out / name for name in names]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders


def write_coco(categories: tuple[Category, ...], samples: Iterable[Sample], out: Path) -> None:
    """COCO instances with RLE masks: ``annotations.json`` and the images in ``images/``."""
    from pycocotools import mask as rle  # imported here: the CLI's other commands never need it

    (images_dir,) = _folders(out, "images")
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, sample in enumerate(samples, start=1):
        sample.write_image(images_dir / sample.name)
        width, height = sample.size()
        images.append({"id": image_id, "file_name": sample.name, "width": width, "height": height})
        classes = sample.classes()
        for category in categories:
            binary = np.asfortranarray(classes == category.id, dtype=np.uint8)
            if not binary.any():
                continue
            encoded = rle.encode(binary)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category.id,
                    "segmentation": {"size": [height, width], "counts": encoded["counts"].decode("ascii")},
                    "area": int(rle.area(encoded)),
                    "bbox": [float(v) for v in rle.toBbox(encoded)],
                    "iscrowd": 0,
                }
            )
    listed = [{"id": c.id, "name": c.name, "supercategory": ""} for c in categories]
    _write_json(out / "annotations.json", {"images": images, "annotations": annotations, "categories": listed})


def voc_palette(count: int) -> list[str]:
    """The first ``count`` colours of PASCAL VOC's palette (bit-interleaved index; 0 is black)."""
    colours = []
    for index in range(count):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours.append(f"#{r:02x}{g:02x}{b:02x}")
    return colours


def write_voc(categories: tuple[Category, ...], samples: Iterable[Sample], out: Path) -> None:
    """PASCAL VOC segmentation: images, palette index masks, the image list and the class list."""
    images_dir, masks_dir, sets_dir = _folders(out, "JPEGImages", "SegmentationClass", "ImageSets/Segmentation")
    palette = voc_palette(len(categories) + 1)
    stems = []
    for sample in samples:
        sample.write_image(images_dir / sample.name)
        (masks_dir / f"{sample.stem}.png").write_bytes(encode_mask(sample.classes(), palette))
        stems.append(sample.stem)
    (sets_dir / "train.txt").write_text("".join(f"{stem}\n" for stem in stems), encoding="utf-8")
    names = ["background", *(c.name for c in categories)]
    (out / "labels.txt").write_text("".join(f"{n}\n" for n in names), encoding="utf-8")


def write_masks(categories: tuple[Category, ...], samples: Iterable[Sample], out: Path) -> None:
    """Plain masks: grey index PNGs, RGB PNGs in the labelling colours, and ``legend.json``."""
    index_dir, colour_dir = _folders(out, "masks", "colour")
    colours = [BACKGROUND_COLOR, *(c.color for c in categories)]
    lut = np.zeros((256, 3), dtype=np.uint8)
    lut[: len(colours)] = [hex_to_rgb(c) for c in colours]
    for sample in samples:
        classes = sample.classes()
        Image.fromarray(classes, "L").save(index_dir / f"{sample.stem}.png")
        Image.fromarray(lut[classes], "RGB").save(colour_dir / f"{sample.stem}.png")
    legend = {"0": {"name": BACKGROUND, "color": BACKGROUND_COLOR}}
    legend.update({str(c.id): {"name": c.name, "color": c.color} for c in categories})
    _write_json(out / "legend.json", legend)


def region_polygons(binary: np.ndarray) -> list[np.ndarray]:
    """The outer border of each connected region of a 2-D boolean mask, as (N, 2) x, y pixel arrays.

    Regions too thin to enclose an area (fewer than 3 border points) are left out.
    """
    import cv2  # imported here: the CLI's other commands never need it

    contours, _ = cv2.findContours(binary.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1, 2) for c in contours if len(c) >= 3]


def normalized(polygon: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pixel points scaled to 0..1 so that scaling back gives at least the pixel again.

    Readers rasterise after scaling back and truncating (Ultralytics casts to ``int32``): a
    coordinate written as 12.99999 loses a whole row, so a point that would scale back below its
    pixel is nudged up by one unit in the last place, and all digits are written.
    """
    size = np.array([width, height], dtype=np.float64)
    coords = polygon / size
    return np.where(coords * size < polygon, np.nextafter(coords, np.inf), coords)


def write_yolo_seg(categories: tuple[Category, ...], samples: Iterable[Sample], out: Path) -> None:
    """Ultralytics YOLO segmentation: images, one label file per image, and ``data.yaml``."""
    images_dir, labels_dir = _folders(out, "images", "labels")
    for sample in samples:
        sample.write_image(images_dir / sample.name)
        classes = sample.classes()
        height, width = classes.shape
        lines = []
        for category in categories:
            for polygon in region_polygons(classes == category.id):
                coords = normalized(polygon, width, height).ravel()
                lines.append(" ".join([str(category.id - 1), *(repr(float(v)) for v in coords)]))
        (labels_dir / f"{sample.stem}.txt").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    # No split is made: every image is accepted ground truth, and the split is the trainer's choice.
    data = {
        "path": str(out.resolve()),
        "train": "images",
        "val": "images",
        "nc": len(categories),
        "names": {c.id - 1: c.name for c in categories},
    }
    (out / "data.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


WRITERS: dict[str, Callable[[tuple[Category, ...], Iterable[Sample], Path], None]] = {
    "coco": write_coco,
    "voc": write_voc,
    "masks": write_masks,
    "yolo-seg": write_yolo_seg,
}
