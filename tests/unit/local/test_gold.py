"""Reading a lead's gold objects: the import's three forms, each bad object refused alone with its reason."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gtaudit.labels import LabelSet
from gtaudit_local.gold import read_gold
from gtaudit_local.imports.sources import SourceError
from PIL import Image

NAMES = ["cat", "dog"]


def classes() -> np.ndarray:
    a = np.zeros((6, 8), dtype=np.uint8)
    a[:3, :4] = 1
    a[4:, 5:] = 2
    return a


def image(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), (40, 50, 60)).save(path)
    return path.read_bytes()


def test_a_folder_gives_each_image_with_its_truth_and_refuses_the_bad_ones(tmp_path: Path) -> None:
    jpg = image(tmp_path / "images" / "street.jpg")
    image(tmp_path / "images" / "lone.png")  # no mask
    image(tmp_path / "images" / "odd.png")
    (tmp_path / "masks").mkdir()
    Image.fromarray(classes(), "L").save(tmp_path / "masks" / "street.png")
    odd = classes()
    odd[0, 0] = 7  # a value the run's two labels lack
    Image.fromarray(odd, "L").save(tmp_path / "masks" / "odd.png")
    read = read_gold(tmp_path, NAMES)
    (obj,) = read.objects
    assert (obj.name, obj.image) == ("street.jpg", jpg)
    np.testing.assert_array_equal(obj.truth, classes())
    refused = dict(read.refused)
    assert refused["lone"].startswith("no mask lone.png in ")
    assert refused["odd"] == "value 7 (1 pixel) is not in the run's label set"


def test_colour_masks_are_read_in_the_run_label_sets_colours(tmp_path: Path) -> None:
    image(tmp_path / "images" / "a.png")
    labels = LabelSet.from_names(NAMES, {"cat": "#123456", "dog": "#654321"})
    rgb = np.full((6, 8, 3), 255, dtype=np.uint8)
    rgb[classes() == 1] = (0x12, 0x34, 0x56)
    rgb[classes() == 2] = (0x65, 0x43, 0x21)
    (tmp_path / "masks").mkdir()
    Image.fromarray(rgb, "RGB").save(tmp_path / "masks" / "a.png")
    (obj,) = read_gold(str(tmp_path), labels).objects
    np.testing.assert_array_equal(obj.truth, classes())
    assert read_gold(tmp_path, NAMES).refused[0][1].startswith("colour #123456")  # the default colours differ


def test_a_manifest_line_without_a_mask_or_without_its_image_is_refused(tmp_path: Path) -> None:
    image(tmp_path / "a.png")
    indices = classes()
    mask = Image.fromarray(indices, "P")
    mask.putpalette([255, 255, 255, 0, 200, 0, 0, 0, 200])
    mask.save(tmp_path / "a-mask.png")
    color_map = {
        "0": {"class-name": "BACKGROUND", "hex-color": "#ffffff"},
        "1": {"class-name": "cat", "hex-color": "#00c800"},
        "2": {"class-name": "dog", "hex-color": "#0000c8"},
    }
    meta = {"internal-color-map": color_map, "type": "groundtruth/semantic-segmentation"}
    lines = [
        {"source-ref": "a.png", "seg-ref": "a-mask.png", "seg-ref-metadata": meta},
        {"source-ref": "b.png", "seg-ref-metadata": {"failure-reason": "ClientError: the task expired"}},
        {"source-ref": "gone.png", "seg-ref": "a-mask.png", "seg-ref-metadata": meta},
    ]
    manifest = tmp_path / "gold.manifest"
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    read = read_gold(manifest, NAMES)
    assert [o.name for o in read.objects] == ["a.png"]
    np.testing.assert_array_equal(read.objects[0].truth, classes())
    refused = dict(read.refused)
    assert refused["b"] == "line 2: no mask: Ground Truth's failure-reason: ClientError: the task expired"
    assert refused["gone"].startswith("image not found: ")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools on numpy 2
def test_a_coco_file_paints_each_image_from_its_annotations(tmp_path: Path) -> None:
    image(tmp_path / "images" / "a.jpg")
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 8, "height": 6}],
        "categories": [{"id": 3, "name": "dog"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "segmentation": [[0, 0, 3, 0, 3, 3, 0, 3]]}],
    }
    (tmp_path / "gold.json").write_text(json.dumps(doc))
    (obj,) = read_gold(tmp_path / "gold.json", NAMES).objects
    assert obj.name == "a.jpg" and set(np.unique(obj.truth).tolist()) == {0, 2}


def test_a_source_that_cannot_be_read_at_all_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not found"):
        read_gold(tmp_path / "nowhere", NAMES)
