"""Ground Truth's output layout: keys are built from safe parts only."""

from __future__ import annotations

import pytest
from gtaudit import layout
from gtaudit.s3uri import S3Uri, parse_s3_uri
from hypothesis import given
from hypothesis import strategies as st

ROOT = S3Uri("b-bucket", "jobs/j/annotations")


@pytest.mark.parametrize("oid", ["0", "17", "img-3_a.b", "猫 の 写真 (1)"])
def test_ground_truths_ids_and_readable_names_pass_unchanged(oid: str) -> None:
    assert layout.key_segment(oid) == oid


@pytest.mark.parametrize("oid", ["../../../../evil", "%2e%2e", "a/b", "a\\b", ".hidden", "x\x00y", "\n", ""])
def test_unsafe_ids_never_become_a_path(oid: str) -> None:
    key = layout.consolidated_mask(ROOT, oid, "2026-11-24T100000").key
    assert key.startswith("jobs/j/annotations/consolidated-annotation/output/")
    name = key.rsplit("/", 1)[1]
    assert key.count("/") == ROOT.key.count("/") + 3 and not name.startswith(".")
    assert "%" not in name and "\\" not in name and all(ord(c) >= 32 for c in name)


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
