"""labeling_pre's domain: task input, languages, label sets and every unworkable object."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from gtaudit.exceptions import InvalidLabelSetError
from gtaudit.labeling.pre import TEXTS, PreConfig, config_from_env, labeling_task_input, pre_labeling
from gtaudit.labels import DEFAULT_LABELS, PALETTE
from support import load_event

BUCKET = "gtaudit-test-data"
ENV = {"ALLOWED_BUCKETS": BUCKET, "TASK_LANGUAGE": "en"}


def config(**env: str) -> PreConfig:
    return config_from_env({**ENV, **env})


def data_object(case: str) -> dict[str, Any]:
    obj: dict[str, Any] = copy.deepcopy(load_event(f"labeling_pre-{case}")["dataObject"])
    return obj


def test_round_one_task_input_has_exactly_the_contract_keys() -> None:
    out = pre_labeling(data_object("source-ref"), config()).dump()
    assert out["isHumanAnnotationRequired"] is True
    task = out["taskInput"]
    assert set(task) == {
        "taskObject", "objectId", "round", "labels", "labelColors", "language", "header",
        "shortInstructions", "fullInstructions", "initialValue", "feedback",
    }  # fmt: skip
    assert task["taskObject"] == f"s3://{BUCKET}/images/street 01 ☃.jpg"
    assert task["objectId"] == "street-01-1a2b3c4d"
    assert task["round"] == 1
    assert task["labels"] == list(DEFAULT_LABELS)
    assert task["labelColors"][0] == {"label": "person", "color": PALETTE[0]}
    assert task["language"] == "en"
    assert task["header"] == TEXTS["en"]["header"]
    assert task["initialValue"] is None and task["feedback"] is None
    json.dumps(out)  # the response must be JSON


def test_japanese_texts_and_unicode_labels_with_quotes() -> None:
    labels = json.dumps(["人", 'say "cheese"', {"label": "犬's \\ toy", "color": "#ABCDEF"}])
    task = labeling_task_input(data_object("source-ref"), config(TASK_LANGUAGE="ja", LABEL_SET=labels)).dump()
    assert task["language"] == "ja"
    assert task["header"] == TEXTS["ja"]["header"]
    assert task["shortInstructions"] == TEXTS["ja"]["short"]
    assert "塗" in task["fullInstructions"]
    assert task["labels"] == ["人", 'say "cheese"', "犬's \\ toy"]
    assert task["labelColors"][2] == {"label": "犬's \\ toy", "color": "#abcdef"}


def test_unknown_language_falls_back_to_english_and_bad_label_set_is_loud() -> None:
    assert config(TASK_LANGUAGE="fr").language == "en"
    assert config(TASK_LANGUAGE=" JA ").language == "ja"
    with pytest.raises(InvalidLabelSetError):
        config(LABEL_SET='["a", "a"]')


def test_object_id_derived_when_absent() -> None:
    obj = data_object("source-ref")
    del obj["object-id"]
    task = labeling_task_input(obj, config()).dump()
    assert task["objectId"].startswith("street-01-")


def test_rework_round_carries_previous_mask_and_feedback() -> None:
    task = labeling_task_input(data_object("rework"), config(TASK_LANGUAGE="ja")).dump()
    assert task["round"] == 2
    assert task["header"] == TEXTS["ja"]["header_rework"].format(round=2)
    assert task["initialValue"] == {
        "labelMappings": {"person": {"color": "#2ca02c"}, "animal": {"color": "#1f77b4"}},
        "src": data_object("rework")["gtaudit"]["previous-mask"],
    }
    fb = task["feedback"]
    assert fb["reasons"] == ["loose-boundary", "missing-object"]
    assert fb["notes"][1] == {"n": 2, "x": 0.8, "y": 0.75, "text": "尻尾"}
    assert '"person"' in fb["comment"]
    assert fb["auditors"] == ["private.us-east-1.ffffffffffffffff"]


def test_rework_keeps_classes_of_the_previous_mask_missing_from_the_label_set() -> None:
    task = labeling_task_input(data_object("rework"), config(LABEL_SET='["person"]')).dump()
    assert task["labels"] == ["person", "animal"]
    assert task["labelColors"][1] == {"label": "animal", "color": "#1f77b4"}


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("inline-source", "inline 'source' text is not an image"),
        ("no-image-ref", "no image reference"),
        ("unsupported-extension", "unsupported image type '.pdf'"),
        ("outside-bucket", "outside the allowed locations"),
        ("bad-rework", "malformed rework data"),
    ],
)
def test_unworkable_objects_are_skipped_with_a_reason(case: str, reason: str) -> None:
    obj = data_object(case)
    out = pre_labeling(obj, config()).dump()
    assert out["isHumanAnnotationRequired"] is False
    assert set(out["taskInput"]) == {"objectId", "skipReason"}
    assert out["taskInput"]["objectId"] == obj["object-id"]
    assert reason in out["taskInput"]["skipReason"]


CMAP = {"1": {"class-name": "a", "hex-color": "#000001"}}
BAD_REWORK = [
    "not an object",
    {"round": 0},
    {"round": True},
    {"round": "2"},
    {"round": 2},  # a rework round without its previous mask
    {"round": 2, "previous-mask": "s3://gtaudit-test-data/m.jpg", "color-map": CMAP},
    {"round": 2, "previous-mask": "s3://other-bucket/m.png", "color-map": CMAP},
    {"round": 2, "previous-mask": "s3://gtaudit-test-data/m.png"},
    {"round": 2, "previous-mask": "s3://gtaudit-test-data/m.png", "color-map": {"1": {"hex-color": "red"}}},
    {"round": 1, "feedback": "redo"},
    {"round": 1, "feedback": {"reasons": "loose-boundary"}},
    {"round": 1, "feedback": {"comment": 5}},
    {"round": 1, "feedback": {"notes": [{"n": 1, "x": 1.5, "y": 0.2, "text": "off the image"}]}},
    {"round": 1, "feedback": {"notes": [{"n": "1", "x": 0.5, "y": 0.2, "text": ""}]}},
    {"round": 1, "feedback": {"notes": {"n": 1}}},
]  # fmt: skip


@pytest.mark.parametrize("gtaudit", BAD_REWORK)
def test_malformed_rework_data_is_skipped(gtaudit: Any) -> None:
    obj = {"source-ref": f"s3://{BUCKET}/images/a.png", "object-id": "a-1", "gtaudit": gtaudit}
    out = pre_labeling(obj, config()).dump()
    assert out["isHumanAnnotationRequired"] is False
    assert out["taskInput"]["skipReason"].startswith("malformed rework data")


@pytest.mark.parametrize("ref", ["s3://gtaudit-test-data/images/A.JPEG", "s3://gtaudit-test-data/x/y.Png"])
def test_extension_check_ignores_case(ref: str) -> None:
    assert pre_labeling({"source-ref": ref}, config()).dump()["isHumanAnnotationRequired"] is True


@pytest.mark.parametrize("ref", ["https://example.com/a.jpg", "s3://gtaudit-test-data/images/noext", 42, ""])
def test_bad_image_references_are_skipped(ref: Any) -> None:
    out = pre_labeling({"source-ref": ref, "object-id": "o-1"}, config()).dump()
    assert out["isHumanAnnotationRequired"] is False
    assert out["taskInput"]["objectId"] == "o-1"


def test_allowed_prefix_and_empty_allow_list() -> None:
    obj = {"source-ref": f"s3://{BUCKET}/images/a.jpg"}
    assert (
        pre_labeling(obj, config(ALLOWED_BUCKETS=f"s3://{BUCKET}/images/")).dump()["isHumanAnnotationRequired"] is True
    )
    assert (
        pre_labeling(obj, config(ALLOWED_BUCKETS=f"s3://{BUCKET}/other/")).dump()["isHumanAnnotationRequired"] is False
    )
    assert pre_labeling(obj, config(ALLOWED_BUCKETS="")).dump()["isHumanAnnotationRequired"] is False
