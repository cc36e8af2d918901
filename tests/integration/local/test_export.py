"""``gtaudit export`` on a tiny run folder, each format read back with its own reader.

The run mirrors a bucket as ``gtaudit demo`` writes it: three originals (two named ``cat.png`` in
different folders, one JPEG stored sideways with EXIF orientation 6), P-mode masks of two classes
whose colour maps number the classes differently, and ``runs/<run>/accepted.manifest``. The same
files uploaded to moto's S3 make the ``s3://`` source, whose export must equal the folder's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
import yaml
from gtaudit.names import unique_names
from gtaudit_local.cli import main
from gtaudit_local.export import export_dataset
from gtaudit_local.export.dataset import load_dataset
from PIL import Image, ImageDraw

BUCKET = "gtaudit-databucket"
RUN = "20261129t120000-abcd"
CLASSES = ("cat", "dog")  # the export's category order: first seen over the manifest
COLORS = {"cat": "#2ca02c", "dog": "#1f77b4"}
# pycocotools' annToMask calls np.array(copy=False) on numpy 2; the pixels it returns are right.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@dataclass(frozen=True)
class Fixture:
    """The run folder and, per expected output stem, the mask in export category ids."""

    root: Path
    expected: dict[str, np.ndarray]


def _color_map(order: tuple[str, ...]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {"0": {"class-name": "BACKGROUND", "hex-color": "#ffffff", "confidence": 0.9}}
    for i, name in enumerate(order, start=1):
        out[str(i)] = {"class-name": name, "hex-color": COLORS[name], "confidence": 0.9}
    return out


def _classes(width: int, height: int, seed: int) -> np.ndarray:
    """A mask in export ids: two rectangles of cat (two regions), one of dog; background elsewhere."""
    a = np.zeros((height, width), dtype=np.uint8)
    a[2 + seed : 12 + seed, 3:15] = 1
    a[height - 9 : height - 2, width - 10 : width - 3] = 1
    a[15:25, 5 + seed : width - 12] = 2
    return a


def _put(root: Path, key: str, data: bytes) -> str:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"s3://{BUCKET}/{key}"


def _png(im: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def run_folder(tmp_path: Path) -> Fixture:
    import io

    root = tmp_path / "demo-output"
    rng = np.random.default_rng(0)
    # (source key, displayed size, colour map order, exif orientation)
    specs = [
        (f"inputs/{RUN}/images/a/cat.png", (40, 30), ("cat", "dog"), 1),
        (f"inputs/{RUN}/images/b/cat.png", (44, 32), ("dog", "cat"), 1),
        (f"inputs/{RUN}/images/sideways.jpg", (36, 48), ("dog", "cat"), 6),
    ]
    lines: list[dict[str, Any]] = []
    stems: list[np.ndarray] = []
    for n, (key, (w, h), order, orientation) in enumerate(specs):
        pixels = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), "RGB")
        if orientation == 6:
            # Stored rotated back, so that applying orientation 6 (rotate 270) shows it w x h.
            stored = pixels.transpose(Image.Transpose.ROTATE_90)
            exif = Image.Exif()
            exif[0x0112] = 6
            buf = io.BytesIO()
            stored.save(buf, format="JPEG", exif=exif)
            source = _put(root, key, buf.getvalue())
        else:
            source = _put(root, key, _png(pixels))
        expected = _classes(w, h, n)
        local = {c: i for i, c in enumerate(order, start=1)}  # this line's own numbering
        raw = np.zeros_like(expected)
        for export_id, name in enumerate(CLASSES, start=1):
            raw[expected == export_id] = local[name]
        mask = Image.fromarray(raw, "L").convert("P")
        mask.putpalette([255, 255, 255, 44, 160, 44, 31, 119, 180])
        job_key = f"jobs/gtaudit-labeling-r1-{RUN}/annotations/consolidated-annotation/output/{n}_2026-11-29T120000.png"
        meta = {"internal-color-map": _color_map(order), "type": "groundtruth/semantic-segmentation"}
        lines.append(
            {
                "source-ref": source,
                "segmentation-ref": _put(root, job_key, _png(mask)),
                "segmentation-ref-metadata": meta,
                "object-id": f"object-{n}",
                "gtaudit": {"outcome": "approved", "round": 1},
            }
        )
        stems.append(expected)
    manifest = root / "runs" / RUN / "accepted.manifest"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    names = unique_names((line["object-id"], line["source-ref"].rsplit("/", 1)[-1]) for line in lines)
    return Fixture(root, {Path(name).stem: arr for name, arr in zip(names, stems, strict=True)})


def test_names_tell_equal_stems_apart_and_replace_unsafe_characters() -> None:
    names = unique_names([("o1", "cat.png"), ("o2", "CAT.jpg"), ("o3", "猫.jpg"), ("o4", ".hid\x07e:n.png")])
    assert names[0].startswith("cat-") and names[0].endswith(".png") and len(names[0]) == len("cat-0000.png")
    assert names[1].startswith("CAT-") and names[0][4:8] != names[1][4:8]
    assert names[2:] == ["猫.jpg", "_hid_e_n.png"]


def _written_images(folder: Path, fixture: Fixture) -> None:
    """Every image is written, upright: its size is its mask's and no orientation tag is left."""
    files = {p.stem: p for p in folder.iterdir()}
    assert sorted(files) == sorted(fixture.expected)
    for stem, expected in fixture.expected.items():
        with Image.open(files[stem]) as im:
            assert im.size == expected.shape[::-1]
            assert im.getexif().get(0x0112) in (None, 1)


def test_coco_reads_back_pixel_exact(run_folder: Fixture, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    out = tmp_path / "coco"
    export_dataset(run_folder.root, "coco", out)
    coco = COCO(str(out / "annotations.json"))
    assert [coco.cats[i]["name"] for i in sorted(coco.cats)] == list(CLASSES)
    assert sorted(coco.cats) == [1, 2]
    assert len(coco.imgs) == 3
    for img in coco.imgs.values():
        expected = run_folder.expected[Path(img["file_name"]).stem]
        assert (img["height"], img["width"]) == expected.shape
        got = np.zeros_like(expected)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img["id"]]))
        assert sorted(a["category_id"] for a in anns) == [1, 2]
        for ann in anns:
            m = coco.annToMask(ann)
            assert not (got[m == 1]).any()  # one annotation per (image, class): no overlap
            got[m == 1] = ann["category_id"]
            assert ann["area"] == int(m.sum()) and ann["iscrowd"] == 0
        np.testing.assert_array_equal(got, expected)
    _written_images(out / "images", run_folder)


def test_voc_index_masks_are_exact(run_folder: Fixture, tmp_path: Path) -> None:
    out = tmp_path / "voc"
    export_dataset(run_folder.root, "voc", out)
    assert (out / "labels.txt").read_text(encoding="utf-8").splitlines() == ["background", *CLASSES]
    listed = (out / "ImageSets/Segmentation/train.txt").read_text(encoding="utf-8").splitlines()
    assert sorted(listed) == sorted(run_folder.expected)
    for stem, expected in run_folder.expected.items():
        with Image.open(out / "SegmentationClass" / f"{stem}.png") as im:
            assert im.mode == "P"
            palette = im.getpalette()
            assert palette is not None and palette[:9] == [
                0,
                0,
                0,
                128,
                0,
                0,
                0,
                128,
                0,
            ]  # VOC: black, then maroon, green
            np.testing.assert_array_equal(np.asarray(im), expected)
    _written_images(out / "JPEGImages", run_folder)


def test_masks_index_and_colour_are_exact(run_folder: Fixture, tmp_path: Path) -> None:
    out = tmp_path / "masks"
    export_dataset(run_folder.root, "masks", out)
    legend = json.loads((out / "legend.json").read_text(encoding="utf-8"))
    assert legend == {
        "0": {"name": "BACKGROUND", "color": "#ffffff"},
        "1": {"name": "cat", "color": COLORS["cat"]},
        "2": {"name": "dog", "color": COLORS["dog"]},
    }
    palette = np.array([[255, 255, 255], [44, 160, 44], [31, 119, 180]], dtype=np.uint8)
    for stem, expected in run_folder.expected.items():
        with Image.open(out / "masks" / f"{stem}.png") as im:
            np.testing.assert_array_equal(np.asarray(im), expected)
        with Image.open(out / "colour" / f"{stem}.png") as im:
            assert im.mode == "RGB"
            np.testing.assert_array_equal(np.asarray(im), palette[expected])


def test_yolo_polygons_cover_each_class(run_folder: Fixture, tmp_path: Path) -> None:
    out = tmp_path / "yolo"
    export_dataset(run_folder.root, "yolo-seg", out)
    data = yaml.safe_load((out / "data.yaml").read_text(encoding="utf-8"))
    assert data["nc"] == 2 and data["names"] == {0: "cat", 1: "dog"} and Path(data["path"]) == out.resolve()
    assert (out / data["path"] / data["train"]).is_dir()
    for stem, expected in run_folder.expected.items():
        h, w = expected.shape
        canvases = {cid: Image.new("L", (w, h), 0) for cid in range(2)}
        lines = (out / "labels" / f"{stem}.txt").read_text(encoding="utf-8").splitlines()
        assert sorted(int(line.split()[0]) for line in lines) == [0, 0, 1]  # cat has two regions
        for line in lines:
            label, *coords = line.split()
            values = [float(v) for v in coords]
            assert all(0.0 <= v <= 1.0 for v in values) and len(values) % 2 == 0
            points = [(values[i] * w, values[i + 1] * h) for i in range(0, len(values), 2)]
            ImageDraw.Draw(canvases[int(label)]).polygon(points, fill=1)
        for cid, canvas in canvases.items():
            got, want = np.asarray(canvas) == 1, expected == cid + 1
            iou = (got & want).sum() / (got | want).sum()
            assert iou >= 0.9, (stem, cid, iou)
    _written_images(out / "images", run_folder)


def test_a_manifest_path_and_the_run_folder_give_the_same_export(run_folder: Fixture, tmp_path: Path) -> None:
    manifest = run_folder.root / "runs" / RUN / "accepted.manifest"
    export_dataset(manifest, "masks", tmp_path / "a")
    export_dataset(run_folder.root / "runs" / RUN, "masks", tmp_path / "b")
    for stem in run_folder.expected:
        assert (tmp_path / "a/masks" / f"{stem}.png").read_bytes() == (
            tmp_path / "b/masks" / f"{stem}.png"
        ).read_bytes()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "parquet"], "unknown --format 'parquet'"),
        (["--format", "coco", "--attribute", "nothing"], "no semantic-segmentation label"),
    ],
)
def test_cli_refuses_bad_input(
    run_folder: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code = main(["export", str(run_folder.root), *argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("gtaudit: error: ") and message in err, err
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_missing_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["export", str(tmp_path / "nowhere"), "--format", "coco", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err == f"gtaudit: error: SOURCE not found: {tmp_path / 'nowhere'}\n"


def test_cli_writes_and_refuses_a_non_empty_out(
    run_folder: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["export", str(run_folder.root), "--format", "voc", "--out", str(tmp_path / "out")]
    assert main(argv) == 0
    assert "wrote 3 images, 2 classes as voc" in capsys.readouterr().err
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("gtaudit: error: --out must be an empty or new folder")


def _upload(root: Path) -> None:
    """Put every file of the mirror folder in moto's S3 under its relative path: the bucket it mirrors."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        s3.put_object(Bucket=BUCKET, Key=path.relative_to(root).as_posix(), Body=path.read_bytes())


def _same_export(a: Path, b: Path) -> None:
    """The two export folders hold the same files; images equal pixel for pixel, the rest byte for byte."""
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        if rel.suffix in (".png", ".jpg"):
            with Image.open(a / rel) as left, Image.open(b / rel) as right:
                assert (left.mode, left.size) == (right.mode, right.size), rel
                np.testing.assert_array_equal(np.asarray(left), np.asarray(right), err_msg=str(rel))
        elif rel.name == "data.yaml":  # holds its own folder's absolute path
            assert (a / rel).read_text(encoding="utf-8").replace(str(a.resolve()), "") == (b / rel).read_text(
                encoding="utf-8"
            ).replace(str(b.resolve()), "")
        else:
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


@pytest.mark.parametrize("fmt", ["coco", "voc", "masks", "yolo-seg"])
@pytest.mark.parametrize("source", [f"s3://{BUCKET}/runs/{RUN}/", f"s3://{BUCKET}/runs/{RUN}/accepted.manifest"])
def test_an_s3_source_exports_exactly_what_its_mirror_does(
    aws: None, run_folder: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str, source: str
) -> None:
    _upload(run_folder.root)
    export_dataset(run_folder.root, fmt, tmp_path / "local")
    assert main(["export", source, "--format", fmt, "--out", str(tmp_path / "s3")]) == 0
    assert f"wrote 3 images, 2 classes as {fmt}" in capsys.readouterr().err
    _same_export(tmp_path / "local", tmp_path / "s3")


def test_an_s3_export_reads_one_image_at_a_time(aws: None, run_folder: Fixture) -> None:
    _upload(run_folder.root)
    s3 = boto3.client("s3")
    gets: list[str] = []
    s3.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **_: gets.append(params["Key"]))
    dataset = load_dataset(f"s3://{BUCKET}/runs/{RUN}/", s3=s3)
    assert gets == [f"runs/{RUN}/accepted.manifest"]  # loading reads the manifest only
    samples = dataset.samples([])
    for item in dataset.items:
        gets.clear()
        sample = next(samples)
        assert sample.item == item
        assert gets == [item.mask.removeprefix(f"s3://{BUCKET}/"), item.image.removeprefix(f"s3://{BUCKET}/")]
    assert next(samples, None) is None


def _drop_second_mask(root: Path, in_s3: bool) -> str:
    """Delete line 2's mask from the mirror or from S3; return its URI."""
    manifest = root / "runs" / RUN / "accepted.manifest"
    uri: str = json.loads(manifest.read_text(encoding="utf-8").splitlines()[1])["segmentation-ref"]
    key = uri.removeprefix(f"s3://{BUCKET}/")
    if in_s3:
        boto3.client("s3").delete_object(Bucket=BUCKET, Key=key)
    else:
        (root / key).unlink()
    return uri


@pytest.mark.parametrize("in_s3", [False, True], ids=["mirror", "s3"])
def test_a_missing_mask_skips_that_image_only_and_names_it(
    aws: None, run_folder: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture[str], in_s3: bool
) -> None:
    if in_s3:
        _upload(run_folder.root)
    uri = _drop_second_mask(run_folder.root, in_s3)
    source = f"s3://{BUCKET}/runs/{RUN}/" if in_s3 else str(run_folder.root)
    assert main(["export", source, "--format", "masks", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "wrote 2 images, 2 classes as masks" in err
    assert f"skipped 1 images whose files are missing:\n  line 2 (object-1): mask not found: {uri}" in err
    skipped = list(run_folder.expected)[1]  # line 2's output stem (the expected masks are in line order)
    written = sorted(p.stem for p in (tmp_path / "out" / "masks").iterdir())
    assert written == sorted(set(run_folder.expected) - {skipped})
    for stem in written:
        with Image.open(tmp_path / "out" / "masks" / f"{stem}.png") as im:
            np.testing.assert_array_equal(np.asarray(im), run_folder.expected[stem])


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (f"s3://{BUCKET}/runs/nope/", f"SOURCE not found: s3://{BUCKET}/runs/nope/accepted.manifest"),
        (
            f"s3://{BUCKET}/runs/nope",
            f"SOURCE not found: s3://{BUCKET}/runs/nope or s3://{BUCKET}/runs/nope/accepted.manifest",
        ),
        ("s3://Not_A_Bucket/x", "SOURCE s3://Not_A_Bucket/x: invalid bucket name"),
    ],
)
def test_cli_refuses_an_s3_source_without_a_manifest(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, message: str
) -> None:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    assert main(["export", source, "--format", "coco", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gtaudit: error: {message}"), err
    assert not (tmp_path / "out").exists()
