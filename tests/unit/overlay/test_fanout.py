"""Mask keys and chunking of the overlay fan-out (no AWS)."""

from __future__ import annotations

import pytest
from gtaudit.models.overlay import MAX_CHUNK
from gtaudit.overlay.fanout import chunked, is_mask_key

MASK = "jobs/j-1/annotations/consolidated-annotation/output/0_2026-11-24T100000.png"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (MASK, True),
        (MASK.replace(".png", ".PNG"), True),
        ("jobs/j-1/annotations/consolidated-annotation/consolidation-response/iteration-1/t.json", False),
        ("jobs/j-1/annotations/consolidated-annotation/output/notes.txt", False),
        ("jobs/j-1/annotations/consolidated-annotation/output/names/cat.json", False),  # a name claim
        ("jobs/j-1/overlays/0.jpg", False),
        ("jobs/j-1/annotations/worker-response/iteration-1/0/t.png", False),
    ],
)
def test_is_mask_key(key: str, expected: bool) -> None:
    assert is_mask_key(key) is expected


def test_chunked() -> None:
    assert chunked(["a", "b", "c"], 2) == [["a", "b"], ["c"]]
    assert chunked([], 5) == []
    for bad in (0, MAX_CHUNK + 1):
        with pytest.raises(ValueError, match="size"):
            chunked(["a"], bad)
