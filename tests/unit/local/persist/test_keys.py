"""Where an S3 key lives in the project folder: readable names, no way out of the bucket's folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gtaudit_local.persist.keys import (
    TEMP_PREFIX,
    UnstorableKey,
    check_no_clash,
    decode_segment,
    key_of,
    object_path,
    relative_path,
)
from hypothesis import given
from hypothesis import strategies as st

# Text S3 can carry: any Unicode but lone surrogates (UTF-8 cannot encode them).
KEY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=60)


@pytest.mark.parametrize(
    "key",
    ["images/cat 1.jpg", "jobs/gtaudit-labeling-r1/annotations/worker-response/iteration-1/0/2026-11-29.json",
     "写真/検品 (1).png", "a.b/c..d/.hidden", "x=1&y=2+3"],
)  # fmt: skip
def test_ordinary_keys_are_their_own_paths(key: str) -> None:
    assert relative_path("bkt", key) == key


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("100%.png", "100%25.png"),
        ("a/%2e%2e/b", "a/%252e%252e/b"),
        ("../../etc/passwd", "%2E%2E/%2E%2E/etc/passwd"),
        ("./x", "%2E/x"),
        ("photos/", "photos/%"),
        ("/abs//x", "%/abs/%/x"),
        ("back\\slash", "back%5Cslash"),
        ("line\nbreak\x7f", "line%0Abreak%7F"),
    ],
)
def test_other_keys_are_escaped_and_read_back(key: str, path: str) -> None:
    assert relative_path("bkt", key) == path
    assert key_of(path) == key


@given(KEY_TEXT)
def test_any_key_maps_inside_its_bucket_and_back(key: str) -> None:
    rel = relative_path("bkt", key)
    names = rel.split("/")
    assert all(name and name not in {".", ".."} and "\x00" not in name for name in names)
    assert not any(name.startswith(TEMP_PREFIX) for name in names)
    assert key_of(rel) == key
    bucket_dir = Path("/project/bucket/bkt")
    path = object_path(bucket_dir, "bkt", key)
    assert os.path.normpath(path).startswith(f"{bucket_dir}/")


@given(st.lists(KEY_TEXT, min_size=2, max_size=2, unique=True))
def test_two_keys_never_share_a_path(pair: list[str]) -> None:
    assert relative_path("bkt", pair[0]) != relative_path("bkt", pair[1])


@pytest.mark.parametrize("name", ["%41", "a%zz", "%2e", ".", "..", "%tmp-1234", "a%2"])
def test_names_the_rule_does_not_make_are_not_keys(name: str) -> None:
    with pytest.raises(ValueError, match="not an encoded key segment"):
        decode_segment(name)


def test_a_segment_too_long_for_a_file_name_is_refused() -> None:
    assert relative_path("bkt", "a/" + "é" * 127)  # 254 bytes: fits
    with pytest.raises(UnstorableKey, match="over 255 bytes"):
        relative_path("bkt", "a/" + "é" * 128)
    with pytest.raises(UnstorableKey, match="over 255 bytes"):
        relative_path("bkt", "%" * 86)  # 86 characters, 258 bytes once escaped


def test_an_object_cannot_be_a_folder_of_another(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").write_bytes(b"")
    with pytest.raises(UnstorableKey, match="use it as a folder"):
        check_no_clash(tmp_path, "bkt", "a")
    with pytest.raises(UnstorableKey, match="a/b is an object"):
        check_no_clash(tmp_path, "bkt", "a/b/c")
    assert check_no_clash(tmp_path, "bkt", "a/c") == tmp_path / "a" / "c"
