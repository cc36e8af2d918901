"""Reading a COCO instances file as semantic masks: the three segmentation forms, and each bad
annotation refused with its image while the other images go on (what ``gtaudit export`` writes is
read back in test_export_round_trip.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gtaudit.labels import LabelSet
from gtaudit.pipeline.start_audit import ImportedMask, Refusal
from gtaudit_local.imports.coco import load_coco, read_coco
from gtaudit_local.imports.sources import Place, SourceError
from pycocotools import mask as rle

LABELS = LabelSet.from_names(["cat", "dog", "tree"])
CATEGORIES = [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}, {"id": 9, "name": "unicorn"}]
# pycocotools' decode calls np.array(copy=False) on numpy 2; the pixels it returns are right.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def scene() -> np.ndarray:
    """8x10 in the run's classes: cat (1) top left, dog (2) bottom right."""
    a = np.zeros((8, 10), dtype=np.uint8)
    a[1:4, 1:5] = 1
    a[5:8, 6:10] = 2
    return a


def compressed(binary: np.ndarray) -> dict[str, Any]:
    enc = rle.encode(np.asfortranarray(binary.astype(np.uint8)))
    return {"size": list(enc["size"]), "counts": enc["counts"].decode("ascii")}


def uncompressed(binary: np.ndarray) -> dict[str, Any]:
    flat = binary.astype(np.uint8).reshape(-1, order="F")
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]]))
    return {"size": list(binary.shape), "counts": ([0] if flat[0] else []) + [int(r) for r in runs]}


def doc(images: list[dict[str, Any]], annotations: list[dict[str, Any]]) -> dict[str, Any]:
    for n, a in enumerate(annotations, start=1):
        a.setdefault("id", n)
    return {"images": images, "annotations": annotations, "categories": CATEGORIES}


def image(image_id: int, name: str, w: int = 10, h: int = 8) -> dict[str, Any]:
    return {"id": image_id, "file_name": name, "width": w, "height": h}


def read(document: dict[str, Any], images: str = "/data/images") -> list[ImportedMask | Refusal]:
    return list(read_coco(document, labels=LABELS, images=Place(images)))


def test_compressed_and_uncompressed_rle_and_polygons_give_the_same_mask() -> None:
    cat, dog = scene() == 1, scene() == 2
    polygon_cat = [[1.0, 1.0, 5.0, 1.0, 5.0, 4.0, 1.0, 4.0]]  # the cat rectangle's outline, in pixel corners
    got = read(
        doc(
            [image(1, "rle.jpg"), image(2, "raw.png"), image(3, "poly.jpg")],
            [
                {"image_id": 1, "category_id": 3, "segmentation": compressed(cat)},
                {"image_id": 1, "category_id": 7, "segmentation": compressed(dog)},
                {"image_id": 2, "category_id": 3, "segmentation": uncompressed(cat)},
                {"image_id": 2, "category_id": 7, "segmentation": uncompressed(dog)},
                {"image_id": 3, "category_id": 3, "segmentation": polygon_cat},
                {"image_id": 3, "category_id": 7, "segmentation": compressed(dog)},
            ],
        )
    )
    assert [o.name for o in got] == ["rle", "raw", "poly"]
    for o in got:
        assert isinstance(o, ImportedMask), o
        np.testing.assert_array_equal(o.classes, scene())
    assert got[0].image == "/data/images/rle.jpg" and got[0].labelers == ("import",)


def test_later_annotations_paint_over_earlier_ones_and_an_unannotated_image_is_all_background() -> None:
    everything = np.ones((8, 10), dtype=bool)
    got = read(
        doc(
            [image(1, "a.jpg"), image(2, "empty.jpg")],
            [
                {"image_id": 1, "category_id": 7, "segmentation": compressed(everything)},
                {"image_id": 1, "category_id": 3, "segmentation": compressed(scene() == 1)},
            ],
        )
    )
    a, empty = got
    assert isinstance(a, ImportedMask) and isinstance(empty, ImportedMask)
    np.testing.assert_array_equal(a.classes, np.where(scene() == 1, 1, 2))
    assert empty.classes.shape == (8, 10) and not empty.classes.any()


def test_each_bad_annotation_refuses_its_image_with_the_reason_and_the_others_go_on() -> None:
    cat = compressed(scene() == 1)
    got = read(
        doc(
            [
                image(1, "ok.jpg"),
                image(2, "unicorn.jpg"),
                image(3, "nocat.jpg"),
                image(4, "box.jpg"),
                image(5, "big.jpg", w=20, h=16),
                image(6, "garbled.jpg"),
                image(7, "ok2.jpg"),
            ],
            [
                {"image_id": 1, "category_id": 3, "segmentation": cat},
                {"image_id": 2, "category_id": 9, "segmentation": cat},
                {"image_id": 3, "category_id": 42, "segmentation": cat},
                {"image_id": 4, "category_id": 3, "bbox": [1, 1, 4, 3]},
                {"image_id": 5, "category_id": 3, "segmentation": cat},
                {"image_id": 6, "category_id": 3, "segmentation": {"size": [8, 10], "counts": "not rle !"}},
                {"image_id": 404, "category_id": 3, "segmentation": cat},
                {"image_id": 404, "category_id": 7, "segmentation": cat},
                {"image_id": 7, "category_id": 3, "segmentation": cat},
            ],
        )
    )
    reasons = {o.name: o.reason for o in got if isinstance(o, Refusal)}
    assert [o.name for o in got if isinstance(o, ImportedMask)] == ["ok", "ok2"]
    assert reasons["unicorn"] == "class 'unicorn' is not in the run's label set (cat, dog, tree)"
    assert reasons["nocat"] == "annotation 3's category_id 42 is not in the COCO file's categories"
    assert reasons["box"] == "annotation 4 has no segmentation (a box-only annotation?)"
    assert reasons["big"] == "annotation 5's mask is 10x8, its image entry says 20x16"
    assert reasons["garbled"].startswith("annotation 6: its segmentation cannot be decoded")
    assert reasons["image-404"] == (
        "annotation 7, 8 names image_id 404, which the COCO file does not list among its images"
    )
    assert {o.image for o in got if isinstance(o, Refusal) and o.name != "image-404"} >= {"/data/images/big.jpg"}
    assert len(got) == 8  # seven image entries and one missing image


def test_an_entry_without_a_size_takes_the_rle_size_but_polygons_need_one() -> None:
    sizeless = [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}]
    got = read(
        doc(
            sizeless,
            [
                {"image_id": 1, "category_id": 3, "segmentation": compressed(scene() == 1)},
                {"image_id": 2, "category_id": 3, "segmentation": [[1, 1, 5, 1, 5, 4]]},
            ],
        )
    )
    a, b = got
    assert isinstance(a, ImportedMask) and a.classes.shape == (8, 10)
    assert isinstance(b, Refusal) and "polygons but its image entry gives no width and height" in b.reason


def test_a_file_that_is_not_coco_stops_the_import(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"images": []}))
    with pytest.raises(SourceError, match="not a COCO instances file"):
        load_coco(Place(str(path)), None)
    path.write_text("{")
    with pytest.raises(SourceError, match="not JSON"):
        load_coco(Place(str(path)), None)
