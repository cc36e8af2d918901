"""consolidate_masks with an in-memory S3 stub: inline data objects, sizes, label order, metadata, names."""

from __future__ import annotations

import base64
import io
import json
import urllib.parse
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError
from gtaudit.labeling.post import BatchContext, consolidate_masks
from gtaudit.models import parse_event
from gtaudit.models.groundtruth import ConsolidationItem, PostAnnotationEvent
from gtaudit.names import unique_stems
from gtaudit.s3uri import S3Uri
from PIL import Image

PERSON, ANIMAL = (44, 160, 44, 255), (31, 119, 180, 255)
T = (0, 0, 0, 0)


class StubS3:
    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.puts: dict[str, dict[str, Any]] = {}
        self.objects = objects or {}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **kw: Any) -> None:
        uri = f"s3://{Bucket}/{Key}"
        if kw.pop("IfNoneMatch", None) == "*" and uri in self.puts:  # S3's conditional write
            raise ClientError({"Error": {"Code": "PreconditionFailed", "Message": "exists"}}, "PutObject")
        self.puts[uri] = {"body": Body, **kw}

    def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        return {"Metadata": self.puts[f"s3://{Bucket}/{Key}"].get("Metadata", {})}

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        data = self.objects.get(f"s3://{Bucket}/{Key}")
        if data is None:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": "gone"}}, "GetObject")
        return {"Body": io.BytesIO(data), "ContentLength": len(data)}


def png(rows: list[list[tuple[int, int, int, int]]]) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.array(rows, dtype=np.uint8), "RGBA").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def ann(worker: str, rows: list[list[tuple[int, int, int, int]]], *, size: bool = True, as_dict: bool = False) -> dict:
    seg: dict[str, Any] = {
        "labelMappings": {"person": {"color": "#2ca02c"}, "animal": {"color": "#1f77b4"}},
        "labeledImage": {"pngImageData": png(rows)},
    }
    if size:
        seg["inputImageProperties"] = {"width": len(rows[0]), "height": len(rows)}
    content: Any = {"crowd-semantic-segmentation": seg}
    return {"workerId": worker, "annotationData": {"content": content if as_dict else json.dumps(content)}}


def ctx(s3: StubS3, categories: tuple[str, ...] | None = ("person", "animal")) -> BatchContext:
    return BatchContext(s3, "label-r1", categories, S3Uri("b-bucket", "out/j/annotations"), "2026-11-24T100000")


def test_inline_data_object_gets_no_source_metadata_and_dict_content_is_accepted() -> None:
    s3 = StubS3()
    item = ConsolidationItem.model_validate(
        {
            "datasetObjectId": 4,
            "dataObject": {"content": "some text"},
            "annotations": [ann("w1", [[PERSON]], as_dict=True)],
        }
    )
    r = consolidate_masks(item, ctx(s3))
    assert r.consolidated
    put = s3.puts[r.content["mask-ref"]]
    assert (
        r.content["mask-ref"]
        == "s3://b-bucket/out/j/annotations/consolidated-annotation/output/4_2026-11-24T100000.png"
    )
    assert put["Metadata"] == {"dataset-object-id": "4"}
    assert put["ContentType"] == "image/png"
    claim = s3.puts["s3://b-bucket/out/j/annotations/consolidated-annotation/output/names/4.json"]
    assert claim["Metadata"] == put["Metadata"]
    assert json.loads(claim["body"]) == {"name": "4", "dataset-object-id": "4", "source-ref": None}


def test_without_image_properties_the_most_common_size_wins() -> None:
    s3 = StubS3()
    small = [[PERSON, T]]
    big = [[PERSON, T, T]]
    item = ConsolidationItem.model_validate(
        {
            "datasetObjectId": "0",
            "annotations": [ann("w3", big, size=False), ann("w1", small, size=False), ann("w2", small, size=False)],
        }
    )
    r = consolidate_masks(item, ctx(s3))
    assert r.content["workers"] == ["w1", "w2"]
    assert r.content["image-size"] == {"width": 2, "height": 1}
    assert r.content["excluded"] == [{"workerId": "w3", "reason": "mask is 3x1, the other workers' are 2x1"}]


def test_labels_outside_the_categories_are_appended() -> None:
    s3 = StubS3()
    item = ConsolidationItem.model_validate({"datasetObjectId": "0", "annotations": [ann("w1", [[ANIMAL, PERSON]])]})
    r = consolidate_masks(item, ctx(s3, categories=("sky",)))
    names = [v["class-name"] for v in r.content["internal-color-map"].values()]
    assert names == ["BACKGROUND", "sky", "person", "animal"]
    mask = np.asarray(Image.open(io.BytesIO(s3.puts[r.content["mask-ref"]]["body"])))
    assert mask.tolist() == [[3, 2]]


def test_annotation_without_worker_id_is_excluded_not_fatal() -> None:
    s3 = StubS3()
    item = ConsolidationItem.model_validate(
        {"datasetObjectId": "0", "annotations": [{"annotationData": {"content": "{}"}}, "junk", ann("w1", [[PERSON]])]}
    )
    r = consolidate_masks(item, ctx(s3))
    assert r.content["workers"] == ["w1"]
    assert [e["workerId"] for e in r.content["excluded"]] == ["unknown-worker", "unknown-worker"]
    assert all(e["reason"].startswith("malformed annotation") for e in r.content["excluded"])


@pytest.mark.parametrize("categories", [["person", "animal"], [{"label": "person"}, {"label": "animal"}], None])
def test_event_model_accepts_category_shapes(categories: Any) -> None:
    ev = parse_event(
        PostAnnotationEvent,
        {"labelAttributeName": "label-r1", "labelCategories": categories, "payload": {"s3Uri": "s3://b-bucket/x.json"}},
    )
    assert ev.label_categories in (["person", "animal"], None)


def test_a_dataset_object_id_that_looks_like_a_path_never_writes_outside_the_output_folder() -> None:
    s3 = StubS3()
    item = ConsolidationItem.model_validate(
        {"datasetObjectId": "../../../../evil", "annotations": [ann("w1", [[PERSON]], as_dict=True)]}
    )
    r = consolidate_masks(item, ctx(s3))
    key = r.content["mask-ref"].removeprefix("s3://b-bucket/")
    assert key.startswith("out/j/annotations/consolidated-annotation/output/") and "/../" not in key
    assert key.count("/") == "out/j/annotations/consolidated-annotation/output/x".count("/")


def test_a_mask_at_the_stored_size_of_an_exif_rotated_photo_is_excluded_with_the_size_workers_saw() -> None:
    photo = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 2x1, shown rotated: 1x2
    Image.new("RGB", (2, 1)).save(photo, "JPEG", exif=exif)
    s3 = StubS3({"s3://b-bucket/images/phone.jpg": photo.getvalue()})
    item = ConsolidationItem.model_validate(
        {
            "datasetObjectId": "0",
            "dataObject": {"s3Uri": "s3://b-bucket/images/phone.jpg"},
            "annotations": [ann("w1", [[PERSON], [PERSON]]), ann("w2", [[PERSON, PERSON]])],  # 1x2 and 2x1
        }
    )
    r = consolidate_masks(item, ctx(s3))
    assert r.content["workers"] == ["w1"] and r.content["image-size"] == {"width": 1, "height": 2}
    assert r.content["excluded"] == [{"workerId": "w2", "reason": "mask is 2x1 but the image workers saw is 1x2"}]


def image_item(oid: str, source: str) -> ConsolidationItem:
    return ConsolidationItem.model_validate(
        {"datasetObjectId": oid, "dataObject": {"s3Uri": source}, "annotations": [ann("w1", [[PERSON]])]}
    )


OUTPUT = "s3://b-bucket/out/j/annotations/consolidated-annotation/output"


@pytest.mark.parametrize(
    ("file_name", "name"),
    [
        ("猫 の 写真 (1).jpg", "猫 の 写真 (1)"),
        ("50%25 off.png", "50_25 off"),  # as given, not URL-decoded: "%" replaced
        ("bell\x07\ttab.jpg", "bell__tab"),
        (".hidden.jpg", "_hidden"),
        ("a\\b:c.jpg", "a_b_c"),
    ],
)
def test_the_mask_is_named_after_the_image_made_safe(file_name: str, name: str) -> None:
    source = f"s3://b-bucket/images/{file_name}"
    s3 = StubS3()
    r = consolidate_masks(image_item("0", source), ctx(s3))
    assert r.content["mask-ref"] == f"{OUTPUT}/{name}_2026-11-24T100000.png"
    assert s3.puts[r.content["mask-ref"]]["Metadata"]["source-ref"] == urllib.parse.quote(source, safe=":/")


def test_a_name_held_by_another_object_takes_the_starts_suffix_and_a_retry_keeps_its_own() -> None:
    s3 = StubS3()
    a, b = "s3://b-bucket/a/Cat.jpg", "s3://b-bucket/b/cat.jpg"
    first = consolidate_masks(image_item("0", a), ctx(s3)).content["mask-ref"]
    second = consolidate_masks(image_item("1", b), ctx(s3)).content["mask-ref"]
    (start_a, start_b) = unique_stems([(a, "Cat.jpg"), (b, "cat.jpg")])  # case-insensitively equal
    assert first == f"{OUTPUT}/Cat_2026-11-24T100000.png"
    assert second == f"{OUTPUT}/{start_b}_2026-11-24T100000.png" and start_b != "cat"
    again = [consolidate_masks(image_item(o, src), ctx(s3)).content["mask-ref"] for o, src in (("1", b), ("0", a))]
    assert again == [second, first]
    assert start_a.startswith("Cat-")


def test_the_same_image_listed_twice_in_a_job_still_gets_two_names() -> None:
    s3 = StubS3()
    src = "s3://b-bucket/images/x.jpg"
    refs = [consolidate_masks(image_item(str(i), src), ctx(s3)).content["mask-ref"] for i in range(3)]
    assert len(set(refs)) == 3 and refs[0] == f"{OUTPUT}/x_2026-11-24T100000.png"
