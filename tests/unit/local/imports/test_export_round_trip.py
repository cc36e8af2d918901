"""What ``gtaudit export`` writes, ``gtaudit start --from`` reads back: COCO, VOC and the masks layout.

A run folder as ``gtaudit demo`` mirrors it (one accepted manifest, two originals, masks whose
colour maps number the classes their own way) is exported in each layout, and each export is read
with the import's readers: every image comes back with its mask in the run's classes, exactly.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gtaudit.labels import LabelSet
from gtaudit.pipeline.start_audit import ImportedMask
from gtaudit_local.export import export_dataset
from gtaudit_local.imports import read_source
from PIL import Image

BUCKET = "gtaudit-databucket"
RUN = "20261129t120000-abcd"
LABELS = LabelSet.from_names(["tree", "cat", "dog"])  # the run importing: another order than the export's
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools on numpy 2


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def run_folder(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """The mirrored run, and each image's mask in the importing run's classes (tree 1, cat 2, dog 3)."""
    root = tmp_path / "demo-output"
    expected: dict[str, np.ndarray] = {}
    lines: list[dict[str, Any]] = []
    for n, (stem, (w, h), order) in enumerate([("a", (20, 12), ("cat", "dog")), ("b", (16, 10), ("dog", "cat"))]):
        names = {"cat": 2, "dog": 3}
        run = np.zeros((h, w), dtype=np.uint8)
        run[1 : 5 + n, 2:9] = names["cat"]
        run[h - 4 :, w - 6 :] = names["dog"]
        expected[stem] = run
        local = np.zeros_like(run)
        for i, name in enumerate(order, start=1):
            local[run == names[name]] = i
        mask = Image.fromarray(local, "L").convert("P")
        mask.putpalette([255, 255, 255, 44, 160, 44, 31, 119, 180])
        image_key = f"inputs/{RUN}/images/{stem}.png"
        mask_key = (
            f"jobs/gtaudit-labeling-r1-{RUN}/annotations/consolidated-annotation/output/{stem}_2026-11-29T1200.png"
        )
        for key, data in ((image_key, _png(Image.new("RGB", (w, h), (90, 90, 90)))), (mask_key, _png(mask))):
            (root / key).parent.mkdir(parents=True, exist_ok=True)
            (root / key).write_bytes(data)
        colours = {"cat": "#2ca02c", "dog": "#1f77b4"}
        color_map: dict[str, Any] = {"0": {"class-name": "BACKGROUND", "hex-color": "#ffffff"}}
        color_map.update({str(i): {"class-name": c, "hex-color": colours[c]} for i, c in enumerate(order, start=1)})
        lines.append(
            {
                "source-ref": f"s3://{BUCKET}/{image_key}",
                "segmentation-ref": f"s3://{BUCKET}/{mask_key}",
                "segmentation-ref-metadata": {
                    "internal-color-map": color_map,
                    "type": "groundtruth/semantic-segmentation",
                },
                "object-id": stem,
            }
        )
    manifest = root / "runs" / RUN / "accepted.manifest"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return root, expected


@pytest.mark.parametrize(("fmt", "kind"), [("coco", "coco"), ("voc", "masks"), ("masks", "masks")])
def test_an_export_reads_back_as_the_same_masks(
    run_folder: tuple[Path, dict[str, np.ndarray]], tmp_path: Path, fmt: str, kind: str
) -> None:
    root, expected = run_folder
    out = tmp_path / f"export-{fmt}"
    export_dataset(root, fmt, out)
    # The masks layout writes no images: they are where the export's source keeps them.
    images = str(root / "inputs" / RUN / "images") if fmt == "masks" else None
    found, objects = read_source(str(out), labels=LABELS, s3=None, images=images)
    got = {o.name: o for o in objects}
    assert found == kind and sorted(got) == sorted(expected)
    for stem, want in expected.items():
        obj = got[stem]
        assert isinstance(obj, ImportedMask), obj
        assert Path(obj.image).stem == stem and Path(obj.image).is_file()
        np.testing.assert_array_equal(obj.classes, want)


def test_the_masks_layout_reads_its_colour_masks_when_it_has_no_index_masks(
    run_folder: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    root, expected = run_folder
    out = tmp_path / "export"
    export_dataset(root, "masks", out)
    for path in (out / "masks").iterdir():
        path.unlink()
    (out / "masks").rmdir()
    _, objects = read_source(str(out), labels=LABELS, s3=None, images=str(root / "inputs" / RUN / "images"))
    got = {o.name: o for o in objects}
    for stem, want in expected.items():
        obj = got[stem]
        assert isinstance(obj, ImportedMask), obj
        np.testing.assert_array_equal(obj.classes, want)
