"""consolidate_masks with an in-memory S3 stub: inline data objects, sizes, label order, metadata, names."""

from __future__ import annotations

import base64
import io
import json
import urllib.parse
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError
from gtaudit.gold import GoldIndex
from gtaudit.labeling.masks import encode_mask
from gtaudit.labeling.post import BatchContext, batch_gold, consolidate_masks, job_name_of
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


# Scores against the vote and a gold object's truth. The vote of W1..W3 below is TRUTH_ROWS: W1
# paints it exactly, W2 misses the animal, W3 paints the person as an animal.
P_, A_ = PERSON, ANIMAL
W1 = [[P_, P_, A_, T], [P_, T, A_, T]]
W2 = [[P_, P_, T, T], [P_, T, T, T]]
W3 = [[P_, A_, A_, T], [P_, T, A_, T]]
TRUTH_ROWS = [[1, 1, 2, 0], [1, 0, 2, 0]]
GOLD_SRC = "s3://b-bucket/images/gold-7.jpg"
TRUTH = "s3://b-bucket/runs/r1/gold/truth/gold-7.png"
SHOWN = "s3://b-bucket/runs/r1/gold/shown/gold-7.png"
SCORES = "s3://b-bucket/out/j/annotations/consolidated-annotation/scores"


def gold_png(rows: list[list[int]], labels: tuple[str, ...] = ("person", "animal")) -> bytes:
    """A gold mask as the run's start writes it: value i is label i of ``labels``, in its colour."""
    colors = {"person": "#2ca02c", "animal": "#1f77b4", "sky": "#ff7f0e"}
    img = Image.fromarray(np.array(rows, dtype=np.uint8), "L").convert("P")
    img.putpalette([v for c in ("#ffffff", *(colors[n] for n in labels)) for v in bytes.fromhex(c[1:])])
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)  # not encode_mask's bytes: a copy is told from a re-encoding
    return buf.getvalue()


def gold_ctx(s3: StubS3, *entries: dict[str, Any], labels: tuple[str, ...] = ("person", "animal")) -> BatchContext:
    index = GoldIndex.model_validate({"labels": list(labels), "entries": list(entries)})
    return replace(ctx(s3), job="gtaudit-labeling-r1-r1", gold=index, gold_entries=index.by_source())


def three_workers(source: str = GOLD_SRC, oid: str = "7") -> ConsolidationItem:
    annotations = [ann("w3", W3), ann("w1", W1), ann("w2", W2)]
    return ConsolidationItem.model_validate(
        {"datasetObjectId": oid, "dataObject": {"s3Uri": source}, "annotations": annotations}
    )


def label_only(**kw: Any) -> dict[str, Any]:
    return {"source-ref": GOLD_SRC, "object-id": "gold-7", "truth-ref": TRUTH, **kw}


def test_each_worker_is_scored_against_the_vote_and_the_scores_file_holds_the_same() -> None:
    s3 = StubS3()
    r = consolidate_masks(three_workers("s3://b-bucket/images/plain.jpg", "3"), replace(ctx(s3), job="job-a"))
    scores = r.content["scores"]
    assert list(scores) == ["w1", "w2", "w3"] and scores["w1"]["iou"] == 1.0
    assert scores["w2"]["classes"]["animal"] == {"inter": 0, "union": 2, "iou": 0.0}
    assert "confusion" not in scores["w3"]  # the label stays small: the cells are in the scores file
    assert "gold" not in r.content
    doc = json.loads(s3.puts[f"{SCORES}/plain.json"]["body"])
    assert doc["consensus"]["w3"]["confusion"] == [{"reference": "person", "painted": "animal", "pixels": 1}]
    assert list(doc) == ["version", "job", "dataset-object-id", "source-ref", "gold", "consensus", "truth", "seeded"]
    assert _without_cells(doc["consensus"]) == scores and (doc["job"], doc["gold"], doc["truth"], doc["seeded"]) == (
        "job-a",
        False,
        None,
        None,
    )
    # A retried batch writes the same bytes.
    before = s3.puts[f"{SCORES}/plain.json"]["body"]
    consolidate_masks(three_workers("s3://b-bucket/images/plain.jpg", "3"), replace(ctx(s3), job="job-a"))
    assert s3.puts[f"{SCORES}/plain.json"]["body"] == before


def test_one_worker_on_an_ordinary_object_has_no_scores_and_no_scores_file() -> None:
    s3 = StubS3()
    r = consolidate_masks(image_item("0", "s3://b-bucket/images/solo.jpg"), ctx(s3))
    assert "scores" not in r.content and "gold" not in r.content
    assert not any("/scores/" in uri for uri in s3.puts)


def test_a_gold_object_scores_each_worker_against_its_truth_matched_by_label_name() -> None:
    # The run's labels in another order than the job's categories: the truth is read by name.
    rows = [[{0: 0, 1: 2, 2: 1}[v] for v in row] for row in TRUTH_ROWS]
    s3 = StubS3({TRUTH: gold_png(rows, ("animal", "person"))})
    r = consolidate_masks(three_workers(), gold_ctx(s3, label_only(), labels=("animal", "person")))
    gold = r.content["gold"]
    assert gold["seeded"] is None and "failure-reason" not in gold
    assert gold["scores"]["w1"]["iou"] == 1.0 and gold["scores"]["w2"]["iou"] == 0.6
    assert r.content["mask-ref"].endswith("/gold-7_2026-11-24T100000.png")
    doc = json.loads(s3.puts[f"{SCORES}/gold-7.json"]["body"])
    assert doc["gold"] is True and _without_cells(doc["truth"]) == gold["scores"]
    assert _without_cells(doc["consensus"]) == r.content["scores"]


def test_a_seeded_object_gets_its_shown_mask_as_it_is_when_its_table_is_the_objects() -> None:
    shown = gold_png([[1, 1, 0, 0], [1, 0, 0, 0]])  # the animal removed: missing-object
    s3 = StubS3({TRUTH: gold_png(TRUTH_ROWS), SHOWN: shown})
    seeded = label_only(role="seeded", defect="missing-object", **{"shown-ref": SHOWN})
    r = consolidate_masks(three_workers(), gold_ctx(s3, seeded))
    assert encode_mask(np.array([[1, 1, 0, 0], [1, 0, 0, 0]], np.uint8), ["#ffffff", "#2ca02c", "#1f77b4"]) != shown
    assert s3.puts[r.content["mask-ref"]]["body"] == shown
    assert r.content["gold"]["seeded"] == "missing-object" and r.content["workers"] == ["w1", "w2", "w3"]
    assert json.loads(s3.puts[f"{SCORES}/gold-7.json"]["body"])["seeded"] == "missing-object"


def test_a_seeded_mask_in_another_class_order_is_re_encoded_in_the_objects_table() -> None:
    shown = gold_png([[2, 2, 1, 0], [2, 0, 0, 0]], ("animal", "person"))  # person=2, animal=1 here
    s3 = StubS3({TRUTH: gold_png([[2, 2, 1, 0], [2, 0, 1, 0]], ("animal", "person")), SHOWN: shown})
    seeded = label_only(role="seeded", defect="none", **{"shown-ref": SHOWN})
    r = consolidate_masks(three_workers(), gold_ctx(s3, seeded, labels=("animal", "person")))
    written = s3.puts[r.content["mask-ref"]]["body"]
    assert written != shown
    img = Image.open(io.BytesIO(written))
    assert np.asarray(img).tolist() == [[1, 1, 2, 0], [1, 0, 0, 0]]  # the object's table: person 1, animal 2
    names = [v["class-name"] for v in r.content["internal-color-map"].values()]
    assert names == ["BACKGROUND", "person", "animal"] and r.content["gold"]["seeded"] == "none"
    palette = img.getpalette() or []
    assert bytes(palette[3:9]).hex() == "2ca02c1f77b4"


def test_an_unreadable_truth_costs_only_the_gold_scores() -> None:
    s3 = StubS3({SHOWN: b"not a png"})  # no truth at all; the shown mask is corrupt
    seeded = label_only(role="seeded", defect="wrong-class", **{"shown-ref": SHOWN})
    r = consolidate_masks(three_workers(), gold_ctx(s3, seeded))
    gold = r.content["gold"]
    assert gold["scores"] == {} and gold["seeded"] is None
    assert gold["failure-reason"].startswith("truth unusable: ") and "shown mask unusable: " in gold["failure-reason"]
    assert r.content["status"] == "consolidated" and len(r.content["scores"]) == 3
    voted = np.asarray(Image.open(io.BytesIO(s3.puts[r.content["mask-ref"]]["body"])))
    assert voted.tolist() == TRUTH_ROWS  # the vote, not the shown mask
    doc = json.loads(s3.puts[f"{SCORES}/gold-7.json"]["body"])
    assert doc["gold"] is True and doc["truth"] is None and _without_cells(doc["consensus"]) == r.content["scores"]


def test_a_truth_of_another_size_is_unusable() -> None:
    s3 = StubS3({TRUTH: gold_png([[1, 1, 2], [1, 0, 2]])})
    r = consolidate_masks(three_workers(), gold_ctx(s3, label_only()))
    assert r.content["gold"]["scores"] == {} and "3x2" in r.content["gold"]["failure-reason"]


class CountingS3(StubS3):
    def __init__(self) -> None:
        super().__init__()
        self.gets: list[str] = []

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        self.gets.append(Key)
        return super().get_object(Bucket=Bucket, Key=Key)


def test_the_gold_index_costs_one_get_for_a_run_and_none_for_a_job_of_no_run() -> None:
    s3 = CountingS3()
    assert batch_gold(s3, "gtaudit-labeling-r1-20261124t101500-3f9c", "b-bucket") is None
    assert s3.gets == ["runs/20261124t101500-3f9c/gold/index.json"]
    assert batch_gold(s3, "my-own-job", "b-bucket") is None and len(s3.gets) == 1


def test_the_job_name_comes_from_the_arn_else_from_the_jobs_folder() -> None:
    base = {"labelAttributeName": "label-r1", "payload": {"s3Uri": "s3://b/jobs/j/annotations/x.json"}}
    root = S3Uri("b", "jobs/job-from-folder/annotations")
    arn = "arn:aws:sagemaker:us-east-1:1:labeling-job/gtaudit-labeling-r1-x"
    assert (
        job_name_of(parse_event(PostAnnotationEvent, {**base, "labelingJobArn": arn}), root) == "gtaudit-labeling-r1-x"
    )
    assert job_name_of(parse_event(PostAnnotationEvent, base), root) == "job-from-folder"


def _without_cells(scores: dict[str, Any]) -> dict[str, Any]:
    """Scores as the label carries them: the scores file's, less the confusion cells."""
    return {w: {k: v for k, v in s.items() if k != "confusion"} for w, s in scores.items()}
