"""Write the labeling_post sample events and the S3 objects they point at (run once, commit the output).

``events/labeling_post-<case>.json`` is the Lambda event. ``events/requests/labeling_post-<case>.json``
maps S3 URIs to the objects a test (or a person using ``sam local invoke``) puts in the bucket first:
the consolidation request and any annotation files given by ``annotationData.s3Uri``.

    .venv/bin/python tests/integration/gen_labeling_events.py
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "gtaudit-test-data"
JOB_ROOT = f"s3://{BUCKET}/out/job-a"
ANNOTATIONS = f"{JOB_ROOT}/annotations"
REQUEST = f"{ANNOTATIONS}/consolidated-annotation/consolidation-request/iteration-1/2026-11-24_10:00:00.json"
ARN = "arn:aws:sagemaker:us-east-1:111122223333:labeling-job/job-a"
PERSON, ANIMAL = "#2ca02c", "#1f77b4"
# One character per pixel. '.' transparent, 'w' opaque white, 'p' person, 'a' animal,
# 'e' person's colour at alpha 160 (an anti-aliased edge), 'n' a near-person colour,
# 'x' magenta, a colour of no label.
PIXELS = {
    ".": (0, 0, 0, 0),
    "w": (255, 255, 255, 255),
    "p": (44, 160, 44, 255),
    "a": (31, 119, 180, 255),
    "e": (44, 160, 44, 160),
    "n": (46, 157, 41, 255),
    "x": (255, 0, 255, 255),
}
GRID_A = [
    "............",
    ".pppp.......",
    ".pppp..aaa..",
    ".pppp..aaa..",
    ".pppe..aaa..",
    "......waaa..",
    "............",
    "............",
]
GRID_B = [
    "............",
    ".ppppp......",
    ".ppppp..aa..",
    ".pnppp..aa..",
    ".ppppp..aa..",
    "........aa..",
    "............",
    "............",
]
GRID_C = [
    "............",
    "............",
    ".aaaa..ppp..",
    ".aaaa..ppp..",
    "............",
    "............",
    "...........p",
    "............",
]
GRID_ANIMAL = [
    "............",
    "............",
    "...aaaa.....",
    "...aaaa.....",
    "...aaaa.....",
    "............",
    "............",
    "............",
]
GRID_UNKNOWN = [
    "............",
    ".xxxx.......",
    ".xxxx..aaa..",
    ".xxxx..aaa..",
    "............",
    "............",
    "............",
    "............",
]


def png(grid: list[str]) -> str:
    """The base64 RGBA PNG of a grid."""
    arr = np.array([[PIXELS[c] for c in row] for row in grid], dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGBA").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def answer(grid: list[str], mappings: dict[str, str], *, width: int = 12, height: int = 8) -> dict[str, Any]:
    """A crowd-semantic-segmentation answerContent."""
    return {
        "crowd-semantic-segmentation": {
            "inputImageProperties": {"height": height, "width": width},
            "labelMappings": {k: {"color": v} for k, v in mappings.items()},
            "labeledImage": {"pngImageData": png(grid)},
        }
    }


def inline(worker: str, content: dict[str, Any] | str) -> dict[str, Any]:
    """An annotation whose answer is inline in ``annotationData.content`` (a JSON string)."""
    text = content if isinstance(content, str) else json.dumps(content)
    return {"workerId": worker, "annotationData": {"content": text}}


def image(name: str) -> dict[str, str]:
    return {"s3Uri": f"s3://{BUCKET}/images/{name}"}


def event(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"version": "2018-10-16", "labelingJobArn": ARN}
    base.update(extra)
    base.setdefault("payload", {"s3Uri": REQUEST})
    return base


BOTH = {"person": PERSON, "animal": ANIMAL}


def cases() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """case -> (event, {s3 uri: object})."""
    out: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}

    # Three workers inline, labelCategories and outputConfig given; colour case, an anti-aliased
    # edge, a near colour, white paint and a three-way tie; plus a second object two workers agree on.
    request = [
        {
            "datasetObjectId": "0",
            "dataObject": image("street 01 ☃.jpg"),
            "annotations": [
                inline("private.us-east-1.cccc", answer(GRID_C, BOTH)),
                inline("private.us-east-1.aaaa", answer(GRID_A, BOTH)),
                inline("private.us-east-1.bbbb", answer(GRID_B, {"person": "#2CA02C", "animal": "#1F77B4"})),
            ],
        },
        {
            "datasetObjectId": "1",
            "dataObject": image("field-02.jpg"),
            "annotations": [
                inline("private.us-east-1.dddd", answer(GRID_ANIMAL, {"animal": ANIMAL})),
                inline("private.us-east-1.eeee", answer(GRID_ANIMAL, {"animal": ANIMAL})),
            ],
        },
    ]
    out["content"] = (
        event(labelCategories=["person", "animal"], labelAttributeName="label-r1", outputConfig=ANNOTATIONS),
        {REQUEST: request},
    )

    # Answers by annotationData.s3Uri, no labelCategories and no outputConfig.
    refs = {
        f"{ANNOTATIONS}/worker-answers/0/{w}.json": answer(g, BOTH)
        for w, g in (("private.us-east-1.aaaa", GRID_A), ("private.us-east-1.bbbb", GRID_B))
    }
    request = [
        {
            "datasetObjectId": "0",
            "dataObject": image("street 01 ☃.jpg"),
            "annotations": [{"workerId": uri.rsplit("/", 1)[1][:-5], "annotationData": {"s3Uri": uri}} for uri in refs],
        }
    ]
    out["s3uri"] = (event(labelAttributeName="label-r1"), {REQUEST: request, **refs})

    # Console-style event: labelCategories null, unknown keys; one worker (agreement null).
    request = [
        {
            "datasetObjectId": "7",
            "dataObject": image("street 01 ☃.jpg"),
            "annotations": [inline("private.us-east-1.aaaa", answer(GRID_A, {"animal": ANIMAL, "person": PERSON}))],
        }
    ]
    out["no-categories"] = (
        event(
            version="2018-10-06",
            labelCategories=None,
            labelAttributeName="label-r2",
            maxHumanWorkersPerDataObject=1,
            vpcEnabled=False,
            roleArn="arn:aws:iam::111122223333:role/gt",
        ),
        {REQUEST: request},
    )

    # Every kind of bad annotation; none of them may sink the batch.
    missing = f"{ANNOTATIONS}/worker-answers/0/gone.json"
    bad = [
        inline("private.us-east-1.b-corrupt", answer(GRID_A, BOTH) | {}),
        inline("private.us-east-1.b-size", answer(GRID_A, BOTH, width=10)),
        inline("private.us-east-1.b-unknown", answer(GRID_UNKNOWN, BOTH)),
        inline("private.us-east-1.b-empty", {}),
        {"workerId": "private.us-east-1.b-missing"},
        {"workerId": "private.us-east-1.b-unreadable", "annotationData": {"s3Uri": missing}},
        inline("private.us-east-1.b-notjson", "{not json"),
        inline(
            "private.us-east-1.b-notbase64", {"crowd-semantic-segmentation": {"labeledImage": {"pngImageData": "%%%"}}}
        ),
        inline("private.us-east-1.b-notpng", answer(GRID_A, BOTH)),
    ]
    corrupt = json.loads(bad[0]["annotationData"]["content"])
    raw = base64.b64decode(corrupt["crowd-semantic-segmentation"]["labeledImage"]["pngImageData"])
    corrupt["crowd-semantic-segmentation"]["labeledImage"]["pngImageData"] = base64.b64encode(raw[:60]).decode()
    bad[0] = inline("private.us-east-1.b-corrupt", corrupt)
    notpng = json.loads(bad[8]["annotationData"]["content"])
    notpng["crowd-semantic-segmentation"]["labeledImage"]["pngImageData"] = base64.b64encode(b"GIF89a...").decode()
    bad[8] = inline("private.us-east-1.b-notpng", notpng)
    request = [
        {
            "datasetObjectId": "0",
            "dataObject": image("street 01 ☃.jpg"),
            "annotations": [
                inline("private.us-east-1.aaaa", answer(GRID_A, BOTH)),
                *bad,
                inline("private.us-east-1.bbbb", answer(GRID_B, BOTH)),
            ],
        },
        {
            "datasetObjectId": "1",
            "dataObject": image("field-02.jpg"),
            "annotations": [bad[0], bad[4]],
        },
        {"dataObject": image("no-id.jpg"), "annotations": []},
        {
            "datasetObjectId": "2",
            "dataObject": image("field-03.jpg"),
            "annotations": [inline("private.us-east-1.dddd", answer(GRID_ANIMAL, {"animal": ANIMAL}))],
        },
        {"datasetObjectId": "3", "dataObject": image("field-04.jpg"), "annotations": []},
    ]
    out["bad-input"] = (
        event(labelCategories=["person", "animal"], labelAttributeName="label-r1", outputConfig=ANNOTATIONS),
        {REQUEST: request},
    )
    return out


def main() -> None:
    for case, (ev, objects) in cases().items():
        (ROOT / "events" / f"labeling_post-{case}.json").write_text(json.dumps(ev, indent=2) + "\n", encoding="utf-8")
        path = ROOT / "events" / "requests" / f"labeling_post-{case}.json"
        path.write_text(json.dumps(objects, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
