"""The one naming rule of images, masks, overlays and exported files (``gtaudit.names``)."""

from __future__ import annotations

import hashlib
import unicodedata

import pytest
from gtaudit.names import (
    MAX_STEM_BYTES,
    collision_tag,
    name_candidates,
    safe_stem,
    stem_of,
    unique_names,
    unique_stems,
)
from hypothesis import given
from hypothesis import strategies as st


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("猫 の 写真 (1)", "猫 の 写真 (1)"),  # Unicode, spaces and brackets kept
        ("a/b\\c", "a_b_c"),
        ("50% off", "50_ off"),  # a reader that URL-decodes the key reads it unchanged
        ("%2e%2e", "_2e_2e"),
        ("tab\there\x00\x7f", "tab_here__"),
        (".hidden", "_hidden"),
        ("", "_"),
    ],
)
def test_safe_stem_keeps_the_name_and_replaces_only_what_is_unsafe(name: str, stem: str) -> None:
    assert safe_stem(name) == stem


def test_a_long_name_is_cut_and_keeps_a_hash_of_the_whole() -> None:
    a, b = "猫" * 100 + "a", "猫" * 100 + "b"
    sa, sb = safe_stem(a), safe_stem(b)
    assert len(sa.encode()) <= MAX_STEM_BYTES and sa != sb
    assert sa.endswith("-" + hashlib.sha256(a.encode()).hexdigest()[:8]) and sa.startswith("猫" * 40)
    assert safe_stem("猫" * 53) == "猫" * 53  # 159 bytes: not cut


@given(st.text(max_size=200))
def test_safe_stem_is_safe_and_applying_it_twice_changes_nothing(name: str) -> None:
    stem = safe_stem(name)
    assert stem and not stem.startswith(".") and len(stem.encode("utf-8", "surrogatepass")) <= MAX_STEM_BYTES
    assert not set(stem) & set('/\\:*?"<>|%')
    assert not any(unicodedata.category(c).startswith("C") for c in stem)
    assert safe_stem(stem) == stem


def test_stem_of_drops_the_extension_only() -> None:
    assert stem_of("猫 の 写真 (1).jpg") == "猫 の 写真 (1)"
    assert stem_of("archive.tar.gz") == "archive.tar"
    assert stem_of(".hidden.jpg") == "_hidden"


def test_name_candidates_give_the_names_the_start_gives_colliding_images() -> None:
    a, b = "s3://bkt/a/cat.jpg", "s3://bkt/b/cat.jpg"
    starts = unique_stems([(a, "cat.jpg"), (b, "cat.jpg")])
    assert starts == [f"cat-{collision_tag(a, 4)}", f"cat-{collision_tag(b, 4)}"]
    first = list(zip(range(6), name_candidates("cat", a), strict=False))
    assert [n for _, n in first] == [
        "cat",
        starts[0],
        f"cat-{collision_tag(a, 8)}",
        f"cat-{collision_tag(a, 64)}",
        f"cat-{collision_tag(a, 64)}-1",
        f"cat-{collision_tag(a, 64)}-2",
    ]


def test_unique_names_number_the_same_identity_seen_twice() -> None:
    names = unique_names([("s3://bkt/x.jpg", "x.jpg"), ("s3://bkt/x.jpg", "x.jpg")])
    tag = collision_tag("s3://bkt/x.jpg", 64)
    assert names == [f"x-{tag}-1.jpg", f"x-{tag}-2.jpg"]
