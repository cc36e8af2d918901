"""Reading a folder of masks beside their images, and telling the three kinds of source apart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from gtaudit.labels import LabelSet
from gtaudit.pipeline.start_audit import ImportedMask, Refusal
from gtaudit_local.imports import detect_kind
from gtaudit_local.imports.folders import read_folder
from gtaudit_local.imports.sources import SourceError
from PIL import Image

LABELS = LabelSet.from_names(["cat", "dog"])  # cat #2ca02c, dog #1f77b4


def classes() -> np.ndarray:
    a = np.zeros((6, 8), dtype=np.uint8)
    a[:3, :4] = 1
    a[4:, 5:] = 2
    return a


def folder(tmp_path: Path, stems: list[str], masks: list[str], *, legend: dict[str, object] | None = None) -> Path:
    root = tmp_path / "delivery"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for stem in stems:
        Image.new("RGB", (8, 6)).save(root / "images" / stem)
    for stem in masks:
        Image.fromarray(classes(), "L").save(root / "masks" / f"{stem}.png")
    if legend is not None:
        (root / "legend.json").write_text(json.dumps(legend))
    return root


def read(root: Path) -> list[ImportedMask | Refusal]:
    return list(read_folder(root, labels=LABELS))


def test_without_a_legend_value_i_is_the_runs_label_i_and_colour_masks_use_the_runs_colours(tmp_path: Path) -> None:
    root = folder(tmp_path, ["a.jpg", "b.png"], ["a"])
    rgb = np.zeros((6, 8, 3), dtype=np.uint8) + 255
    rgb[classes() == 1] = (0x2C, 0xA0, 0x2C)
    rgb[classes() == 2] = (0x1F, 0x77, 0xB4)
    Image.fromarray(rgb, "RGB").save(root / "masks" / "b.png")
    a, b = read(root)
    assert isinstance(a, ImportedMask) and isinstance(b, ImportedMask)
    assert a.image == str(root / "images" / "a.jpg") and (a.name, b.name) == ("a", "b")
    np.testing.assert_array_equal(a.classes, classes())
    np.testing.assert_array_equal(b.classes, classes())


def test_a_legend_maps_values_by_class_name(tmp_path: Path) -> None:
    legend = {"0": {"name": "BACKGROUND", "color": "#ffffff"}, "1": {"name": "dog"}, "2": {"name": "cat"}}
    (got,) = read(folder(tmp_path, ["a.jpg"], ["a"], legend=legend))
    assert isinstance(got, ImportedMask)
    np.testing.assert_array_equal(got.classes, np.choose(classes(), [0, 2, 1]).astype(np.uint8))


def test_each_unmatched_or_bad_object_is_refused_with_its_reason_and_the_others_go_on(tmp_path: Path) -> None:
    root = folder(tmp_path, ["ok.jpg", "twin.jpg", "twin.png", "nomask.jpg", "stray.jpg"], ["ok", "twin", "orphan"])
    rgb = np.full((6, 8, 3), 255, dtype=np.uint8)
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb, "RGB").save(root / "masks" / "stray.png")
    grey = classes()
    grey[0, 0] = 9
    Image.fromarray(grey, "L").save(root / "masks" / "nine.png")
    Image.new("RGB", (8, 6)).save(root / "images" / "nine.jpg")
    got = read(root)
    reasons = {o.name: o.reason for o in got if isinstance(o, Refusal)}
    assert [o.name for o in got if isinstance(o, ImportedMask)] == ["ok"]
    assert reasons["nomask"] == f"no mask nomask.png in {root / 'masks'}"
    assert reasons["orphan"].startswith(f"no image named orphan.* in {root / 'images'}")
    assert reasons["twin"].startswith("several images named twin.* (twin.jpg, twin.png)")
    assert reasons["stray"] == "colour #010203 (1 pixel) is not in the run's label set"
    assert reasons["nine"] == "value 9 (1 pixel) is not in the run's label set"
    assert len(got) == 6


def test_a_class_of_the_legend_the_run_lacks_refuses_the_masks_that_use_it(tmp_path: Path) -> None:
    legend = {"1": {"name": "cat"}, "2": {"name": "unicorn"}}
    root = folder(tmp_path, ["a.jpg", "b.jpg"], ["a"], legend=legend)
    Image.fromarray((classes() == 1).astype(np.uint8), "L").save(root / "masks" / "b.png")
    a, b = read(root)
    assert isinstance(a, Refusal) and a.reason == "class 'unicorn' is not in the run's label set (cat, dog)"
    assert isinstance(b, ImportedMask)


def test_a_folder_without_masks_or_with_a_broken_legend_stops_the_import(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="holds no masks"):
        read(tmp_path / "empty")
    root = folder(tmp_path, [], [])
    (root / "legend.json").write_text("[1, 2]")
    with pytest.raises(SourceError, match="is not a legend"):
        read(root)


def test_the_kind_of_source_follows_its_form(tmp_path: Path) -> None:
    for name in ("out.manifest", "out.jsonl", "coco.json", "notes.txt"):
        (tmp_path / name).write_text("")
    (tmp_path / "masks").mkdir()
    (tmp_path / "coco-export").mkdir()
    (tmp_path / "coco-export" / "annotations.json").write_text("{}")
    assert detect_kind(str(tmp_path / "out.manifest")) == "groundtruth"
    assert detect_kind(str(tmp_path / "out.jsonl")) == "groundtruth"
    assert detect_kind("s3://bucket/jobs/j/manifests/output/output.manifest") == "groundtruth"
    assert detect_kind(str(tmp_path / "coco.json")) == "coco"
    assert detect_kind(str(tmp_path / "coco-export")) == "coco"
    assert detect_kind(str(tmp_path / "masks")) == "masks"
    with pytest.raises(SourceError, match=r"not a folder, a \.manifest/\.jsonl manifest or a \.json COCO file"):
        detect_kind(str(tmp_path / "notes.txt"))
    with pytest.raises(SourceError, match="--from not found"):
        detect_kind(str(tmp_path / "nothing-here"))
