"""Ground Truth's output layout: keys are built from safe parts only; masks and overlays carry the image's name."""

from __future__ import annotations

import pytest
from gtaudit import layout
from gtaudit.names import safe_stem
from gtaudit.s3uri import S3Uri, parse_s3_uri
from hypothesis import given
from hypothesis import strategies as st

ROOT = S3Uri("b-bucket", "jobs/j/annotations")
JOB = S3Uri("b-bucket", "jobs/j")
TS = "2026-11-24T100000"


@pytest.mark.parametrize("oid", ["0", "17", "img-3_a.b", "猫 の 写真 (1)"])
def test_ground_truths_ids_and_readable_names_pass_unchanged(oid: str) -> None:
    assert layout.key_segment(oid) == oid


@pytest.mark.parametrize("oid", ["../../../../evil", "%2e%2e", "a/b", "a\\b", ".hidden", "x\x00y", "\n", ""])
def test_unsafe_names_never_become_a_path(oid: str) -> None:
    for uri in (
        layout.consolidated_mask(ROOT, oid, TS),
        layout.overlay(JOB, oid),
        layout.name_claim(ROOT, oid),
        layout.scores_file(ROOT, oid),
    ):
        parent, _, name = uri.key.rpartition("/")
        assert parent in {
            f"{ROOT.key}/consolidated-annotation/output",
            f"{JOB.key}/overlays",
            f"{ROOT.key}/consolidated-annotation/output/names",
            f"{ROOT.key}/consolidated-annotation/scores",
        }
        assert name and not name.startswith(".")
        assert "%" not in name and "\\" not in name and all(ord(c) >= 32 for c in name)


def test_mask_and_overlay_are_named_after_the_image() -> None:
    mask = layout.consolidated_mask(ROOT, "猫 の 写真 (1)", TS)
    assert mask.key == f"jobs/j/annotations/consolidated-annotation/output/猫 の 写真 (1)_{TS}.png"
    assert layout.mask_name(mask) == "猫 の 写真 (1)"
    assert layout.overlay(JOB, layout.mask_name(mask)).key == "jobs/j/overlays/猫 の 写真 (1).jpg"
    assert layout.overlay_failure(JOB, layout.mask_name(mask)).key == "jobs/j/overlays/猫 の 写真 (1).failed.json"


@pytest.mark.parametrize(
    ("file_name", "name"),
    [
        (f"12_{TS}.png", "12"),  # Ground Truth's built-in <index>_<timestamp>.png
        (f"IMG_0001_{TS}.png", "IMG_0001"),  # the name's own "_" stay: timestamps hold none
        ("img_3_redo.png", "img_3"),  # pipeline.redo's requests
        (f"cat-1a2b_{TS}.PNG", "cat-1a2b"),
        ("mask.png", "mask"),  # not our layout: the whole stem
        (f"_{TS}.png", f"_{TS}"),
        ("50%25_t.png", "50_25"),  # as overlay() would make it: mask_name is the overlay's name
    ],
)
def test_mask_name_is_the_file_name_without_its_timestamp(file_name: str, name: str) -> None:
    assert layout.mask_name(ROOT.join("consolidated-annotation", "output", file_name)) == name


@given(st.text(max_size=60))
def test_a_masks_name_reads_back_as_its_overlays(name: str) -> None:
    mask = layout.consolidated_mask(ROOT, name, TS)
    assert layout.mask_name(mask) == safe_stem(name)
    assert layout.overlay(JOB, layout.mask_name(mask)).name == safe_stem(name) + ".jpg"


@pytest.mark.parametrize("timestamp", ["2026_11", "a/b", ""])
def test_a_timestamp_that_would_hide_the_name_is_refused(timestamp: str) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        layout.consolidated_mask(ROOT, "cat", timestamp)


def test_a_name_claim_ignores_case() -> None:
    assert layout.name_claim(ROOT, "Cat") == layout.name_claim(ROOT, "cat")
    assert layout.name_claim(ROOT, "Cat").key == "jobs/j/annotations/consolidated-annotation/output/names/cat.json"


@given(st.text(max_size=40), st.text(max_size=40))
def test_different_names_do_not_share_a_segment_by_accident(a: str, b: str) -> None:
    if a != b:
        assert layout.key_segment(a) != layout.key_segment(b)
    assert "/" not in layout.key_segment(a) and layout.key_segment(a) not in ("", ".", "..")


REQUEST = "out/job-a/annotations/consolidated-annotation/consolidation-request/iteration-1/2026-11-24_10:00:00.json"


@pytest.mark.parametrize(
    ("request_key", "output_config", "expected"),
    [
        (REQUEST, "s3://b-bucket/out/job-a/annotations", "out/job-a/annotations"),  # what GT sends
        (REQUEST, None, "out/job-a/annotations"),  # no outputConfig: from the request's own path
        # AWS's sample event: outputConfig names a file under consolidated-annotation/
        (
            REQUEST,
            "s3://b-bucket/out/job-a/annotations/consolidated-annotation/consolidation-response/"
            "iteration-1/2026-11-24_10:00:00.json",
            "out/job-a/annotations",
        ),
        ("custom/batch.json", None, "custom"),  # not GT's layout: beside the request
        ("annotations.json", None, None),  # the documented event: payload at the bucket root
        (REQUEST, "s3://other-bucket/out/job-a/annotations", None),  # another bucket
        (REQUEST, "s3://b-bucket/out/job-b/annotations", None),  # another job's folder
    ],
)
def test_the_annotations_root_is_derived_or_known_to_be_unknown(
    request_key: str, output_config: str | None, expected: str | None
) -> None:
    config = parse_s3_uri(output_config) if output_config else None
    root = layout.annotations_root(S3Uri("b-bucket", request_key), config)
    assert (root.key if root else None) == expected


def test_the_scores_file_sits_beside_the_masks_outside_the_mask_folder() -> None:
    # The overlay's rule matches consolidated-annotation/output/*.png: a scores file must never match it.
    uri = layout.scores_file(ROOT, "猫 の 写真 (1)")
    assert uri.key == "jobs/j/annotations/consolidated-annotation/scores/猫 の 写真 (1).json"
