"""Reading a Ground Truth built-in semantic-segmentation output manifest: each bad line refused alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gtaudit.labels import LabelSet
from gtaudit.pipeline.start_audit import ImportedMask, Refusal
from gtaudit_local.imports.groundtruth import read_manifest
from gtaudit_local.imports.sources import Place, SourceError
from PIL import Image

LABELS = LabelSet.from_names(["cat", "dog", "tree"])
# The delivering job numbers and colours its classes its own way: dog is 1 there, cat 2.
JOB_MAP = {
    "0": {"class-name": "BACKGROUND", "hex-color": "#ffffff", "confidence": 0.8},
    "1": {"class-name": "dog", "hex-color": "#e6194b", "confidence": 0.8},
    "2": {"class-name": "cat", "hex-color": "#3cb44b", "confidence": 0.8},
}
RGB = {0: (255, 255, 255), 1: (0xE6, 0x19, 0x4B), 2: (0x3C, 0xB4, 0x4B)}


def job_indices() -> np.ndarray:
    """A 6x4 mask in the job's indices: cat (2) on the left, dog (1) bottom right."""
    a = np.zeros((4, 6), dtype=np.uint8)
    a[:, :2] = 2
    a[2:, 4:] = 1
    return a


RUN_CLASSES = np.where(job_indices() == 2, 1, np.where(job_indices() == 1, 2, 0)).astype(np.uint8)  # cat 1, dog 2


def palette_png(path: Path, indices: np.ndarray) -> None:
    im = Image.fromarray(indices, "P")
    im.putpalette([c for i in range(3) for c in RGB[i]])
    im.save(path)


def rgb_png(path: Path, indices: np.ndarray) -> np.ndarray:
    rgb = np.zeros((*indices.shape, 3), dtype=np.uint8)
    for i, c in RGB.items():
        rgb[indices == i] = c
    Image.fromarray(rgb, "RGB").save(path)
    return rgb


def line(image: str, mask: str | None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"source-ref": image}
    if mask is not None:
        out["job-ref"] = mask
    meta = {"internal-color-map": JOB_MAP, "type": "groundtruth/semantic-segmentation", "job-name": "labeling-job/j1"}
    out["job-ref-metadata"] = meta
    out.update(extra)
    return out


def write(folder: Path, lines: list[dict[str, Any] | str]) -> Place:
    path = folder / "output.manifest"
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return Place(str(path))


def read(manifest: Place, **kw: Any) -> list[ImportedMask | Refusal]:
    return list(read_manifest(manifest, labels=LABELS, s3=None, **kw))


def test_masks_are_mapped_to_the_run_classes_by_name_whatever_the_jobs_order_and_colours(tmp_path: Path) -> None:
    palette_png(tmp_path / "0_t.png", job_indices())
    rgb_png(tmp_path / "1_t.png", job_indices())
    got = read(write(tmp_path, [line("s3://b/img/a.jpg", "0_t.png"), line("s3://b/img/b.jpg", "1_t.png")]))
    assert [type(o) for o in got] == [ImportedMask, ImportedMask]
    a, b = got
    assert isinstance(a, ImportedMask) and isinstance(b, ImportedMask)
    assert (a.name, a.image, a.labelers) == ("a", "s3://b/img/a.jpg", ("labeling-job/j1",))
    np.testing.assert_array_equal(a.classes, RUN_CLASSES)
    np.testing.assert_array_equal(b.classes, RUN_CLASSES)


def test_each_bad_line_is_refused_with_its_reason_and_the_others_go_on(tmp_path: Path) -> None:
    palette_png(tmp_path / "ok.png", job_indices())
    stray = rgb_png(tmp_path / "stray.png", job_indices())
    stray[0, 5] = (0x12, 0x34, 0x56)
    Image.fromarray(stray, "RGB").save(tmp_path / "stray.png")
    foreign = dict(JOB_MAP, **{"3": {"class-name": "unicorn", "hex-color": "#0000ff"}})
    palette_png(tmp_path / "unicorn.png", np.where(job_indices() == 1, 3, job_indices()).astype(np.uint8))
    im = Image.open(tmp_path / "unicorn.png")
    im.putpalette([*RGB[0], *RGB[1], *RGB[2], 0, 0, 255])
    im.save(tmp_path / "unicorn.png")
    expired = {"job-ref-metadata": {"failure-reason": "ClientError: the task expired", "retry-count": 1}}
    lines: list[dict[str, Any] | str] = [
        line("s3://b/ok1.jpg", "ok.png"),
        {"source-ref": "s3://b/gone.jpg", **expired},  # Ground Truth gave up: no mask
        line("s3://b/stray.jpg", "stray.png"),  # a colour the colour map lacks
        line("s3://b/uni.jpg", "unicorn.png", **{"job-ref-metadata": {"internal-color-map": foreign}}),
        line("s3://b/nofile.jpg", "missing.png"),
        '{"source-ref": "s3://b/cut.jpg", ',  # not JSON
        {"job-ref": "ok.png"},  # no source-ref
        line("s3://b/ok2.jpg", "ok.png"),
    ]
    got = read(write(tmp_path, lines))
    reasons = {o.name: o.reason for o in got if isinstance(o, Refusal)}
    assert [o.name for o in got if isinstance(o, ImportedMask)] == ["ok1", "ok2"]
    assert "no mask" in reasons["gone"] and "the task expired" in reasons["gone"]
    assert "colour #123456 (1 pixel) is not in the colour map" in reasons["stray"]
    assert "class 'unicorn' is not in the run's label set (cat, dog, tree)" in reasons["uni"]
    assert "mask not found" in reasons["nofile"] and "missing.png" in reasons["nofile"]
    assert reasons["line-6"].startswith("line 6: not JSON")
    assert reasons["line-7"] == "line 7 has no source-ref"
    assert len(got) == len(lines)  # every line accounted for, once


def test_a_class_the_colour_map_defines_but_the_mask_never_uses_is_no_error(tmp_path: Path) -> None:
    palette_png(tmp_path / "m.png", job_indices())
    unused = {"class-name": "unicorn", "hex-color": "#0000ff"}
    extra = {"job-ref-metadata": {"internal-color-map": {**JOB_MAP, "3": unused}}}
    (got,) = read(write(tmp_path, [line("s3://b/a.jpg", "m.png", **extra)]))
    assert isinstance(got, ImportedMask)


def test_a_malformed_colour_map_refuses_its_line_only(tmp_path: Path) -> None:
    palette_png(tmp_path / "m.png", job_indices())
    bad = {"job-ref-metadata": {"internal-color-map": {**JOB_MAP, "3": {"class-name": "x", "hex-color": "blue"}}}}
    refused, ok = read(write(tmp_path, [line("s3://b/a.jpg", "m.png", **bad), line("s3://b/b.jpg", "m.png")]))
    assert isinstance(refused, Refusal) and "the colour map" in refused.reason and "'blue'" in refused.reason
    assert isinstance(ok, ImportedMask)


def test_the_attribute_is_found_per_line_or_named_when_a_chained_job_carries_two(tmp_path: Path) -> None:
    palette_png(tmp_path / "m.png", job_indices())
    two = line("s3://b/a.jpg", "m.png", **{"fix-ref": "m.png", "fix-ref-metadata": {"internal-color-map": JOB_MAP}})
    manifest = write(tmp_path, [two])
    (refused,) = read(manifest)
    assert isinstance(refused, Refusal) and "several segmentation labels (fix-ref, job-ref)" in refused.reason
    (chosen,) = read(manifest, attribute="fix")
    assert isinstance(chosen, ImportedMask)
    (absent,) = read(manifest, attribute="other-ref")
    assert isinstance(absent, Refusal) and "'other-ref'" in absent.reason


def test_local_references_are_relative_to_the_images_and_to_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "masks").mkdir()
    palette_png(tmp_path / "masks" / "m.png", job_indices())
    (got,) = read(write(tmp_path, [line("cat 1.jpg", "masks/m.png")]), images=Place("/photos"))
    assert isinstance(got, ImportedMask) and got.image == "/photos/cat 1.jpg" and got.name == "cat 1"


def test_a_grey_index_mask_is_read_by_its_values_and_transparent_pixels_are_background(tmp_path: Path) -> None:
    Image.fromarray(job_indices(), "L").save(tmp_path / "grey.png")
    rgba = np.dstack([rgb_png(tmp_path / "x.png", job_indices()), np.full((4, 6), 255, np.uint8)])
    rgba[0, 0, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    grey, alpha = read(write(tmp_path, [line("s3://b/g.jpg", "grey.png"), line("s3://b/r.jpg", "rgba.png")]))
    assert isinstance(grey, ImportedMask) and isinstance(alpha, ImportedMask)
    np.testing.assert_array_equal(grey.classes, RUN_CLASSES)
    expected = RUN_CLASSES.copy()
    expected[0, 0] = 0
    np.testing.assert_array_equal(alpha.classes, expected)


def test_two_images_with_one_stem_get_told_apart(tmp_path: Path) -> None:
    palette_png(tmp_path / "m.png", job_indices())
    got = read(write(tmp_path, [line("s3://b/x/cat.jpg", "m.png"), line("s3://b/y/cat.jpg", "m.png")]))
    names = [o.name for o in got]
    assert len(set(names)) == 2 and all(n.startswith("cat-") for n in names)


def test_a_manifest_that_cannot_be_read_stops_the_import(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="manifest not found"):
        read(Place(str(tmp_path / "nope.manifest")))
