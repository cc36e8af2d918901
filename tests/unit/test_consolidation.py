"""The consolidation request is read as a stream: one item at a time, bad documents refused clearly."""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Any

import pytest
from gtaudit.consolidation import ordered_map, read_batch
from gtaudit.exceptions import InvalidEventError
from gtaudit.models.groundtruth import PostAnnotationEvent


class _Body(io.BytesIO):
    """A StreamingBody stand-in that records how far it was read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.high = 0

    def read(self, n: int | None = -1) -> bytes:
        out = super().read(n)
        self.high = self.tell()
        return out


class _S3:
    def __init__(self, data: bytes) -> None:
        self.body = _Body(data)

    def get_object(self, **_: Any) -> dict[str, Any]:
        return {"Body": self.body}


def _event() -> PostAnnotationEvent:
    return PostAnnotationEvent.model_validate(
        {
            "version": "2018-10-16",
            "labelingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/j",
            "labelAttributeName": "label-r1",
            "payload": {
                "s3Uri": "s3://bucket/jobs/j/annotations/consolidated-annotation/consolidation-request/iteration-1/x.json"
            },
        }
    )


def _item(i: int, pad: int = 0) -> dict[str, Any]:
    content = json.dumps({"x": "p" * pad})
    return {
        "datasetObjectId": str(i),
        "dataObject": {"s3Uri": f"s3://bucket/images/{i}.jpg"},
        "annotations": [{"workerId": "w", "annotationData": {"content": content}}],
    }


def test_items_are_read_as_they_are_consumed_not_all_at_once() -> None:
    data = json.dumps([_item(i, pad=200_000) for i in range(20)]).encode()
    s3 = _S3(data)
    batch = read_batch(s3, _event())
    first = next(batch.items)
    assert first.dataset_object_id == "0"
    assert s3.body.high < len(data) / 4  # a few items in, not the whole document
    assert [i.dataset_object_id for i in batch.items] == [str(i) for i in range(1, 20)]


def test_a_bad_item_is_skipped_with_its_number_and_the_rest_is_read() -> None:
    data = json.dumps([_item(0), {"dataObject": {}}, _item(2)]).encode()
    batch = read_batch(_S3(data), _event())
    assert [i.dataset_object_id for i in batch.items] == ["0", "2"]
    assert len(batch.skipped) == 1 and batch.skipped[0].startswith("item 1:")


@pytest.mark.parametrize("body", [b'{"not": "an array"}', b"nonsense", b""])
def test_a_request_that_is_not_an_array_is_refused_at_once(body: bytes) -> None:
    with pytest.raises(InvalidEventError, match="not a JSON array"):
        read_batch(_S3(body), _event())


def test_a_request_that_breaks_off_is_refused_when_reached() -> None:
    data = json.dumps([_item(0), _item(1)]).encode()[:-40]
    batch = read_batch(_S3(b"\xef\xbb\xbf  " + data), _event())
    with pytest.raises(InvalidEventError, match="not JSON"):
        list(batch.items)


def test_ordered_map_keeps_order_uses_threads_and_reads_a_bounded_window() -> None:
    read = 0
    busy: set[int] = set()
    overlap = threading.Event()

    def items() -> Any:
        nonlocal read
        for i in range(40):
            read += 1
            yield i

    def work(i: int) -> int:
        busy.add(i)
        if len(busy) > 1:
            overlap.set()
        time.sleep(0.01 if i % 3 else 0.03)
        busy.discard(i)
        return i * i

    out = ordered_map(work, items(), threads=2)
    assert next(out) == 0
    assert read <= 4 + 1
    assert list(out) == [i * i for i in range(1, 40)]
    assert overlap.is_set()
