"""A small scene for the scripted workers: its reference, images and masks on S3, and GT's tasks.

Helpers the worker tests import (``from worker_scenes import ...``), as ``gt_project`` is for the
Ground Truth emulator's tests.
"""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from gtaudit.labeling.masks import decode_mask, encode_mask
from gtaudit.labels import DEFAULT_LABELS, LabelSet
from gtaudit.reasons import reason_inputs
from gtaudit_local.workers.base import Answer, Task
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
LABELS = LabelSet.from_names(DEFAULT_LABELS)
COLORS = [lb.color for lb in LABELS.labels]
PALETTE = list(enumerate(COLORS, start=1))
LEGEND = [{"index": i, "label": n, "color": c} for i, (n, c) in enumerate(zip(LABELS.names, COLORS, strict=True), 1)]
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
PERSON, ANIMAL, OBJECT = 1, 2, 7


def clock() -> datetime:
    return T0


def reference_scene() -> np.ndarray:
    """160x120: a person rectangle and an object square touching it, on background."""
    ref = np.zeros((120, 160), dtype=np.uint8)
    ref[20:100, 20:70] = PERSON
    ref[40:80, 70:110] = OBJECT
    return ref


def save_reference(folder: Path, stem: str, classes: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.png").write_bytes(encode_mask(classes, ["#ffffff", *COLORS]))


def put_image(s3: Any, bucket: str, key: str, size: tuple[int, int], exif_orientation: int = 1) -> str:
    buf = io.BytesIO()
    exif = Image.Exif()
    if exif_orientation != 1:
        exif[0x0112] = exif_orientation
    Image.new("RGB", size, (120, 130, 140)).save(buf, format="JPEG", quality=90, exif=exif.tobytes())
    s3.put_object(Bucket=bucket, Key=key, Body=buf.getvalue())
    return f"s3://{bucket}/{key}"


def put_mask(s3: Any, bucket: str, key: str, classes: np.ndarray) -> str:
    s3.put_object(Bucket=bucket, Key=key, Body=encode_mask(classes, ["#ffffff", *COLORS]))
    return f"s3://{bucket}/{key}"


def labeling_task(image_uri: str, *, object_id: str = "scene-1", initial: Any = None, feedback: Any = None) -> Task:
    task_input = {
        "taskObject": image_uri,
        "objectId": object_id,
        "round": 2 if initial else 1,
        "labels": LABELS.names,
        "labelColors": [{"label": lb.name, "color": lb.color} for lb in LABELS.labels],
        "language": "en",
        "initialValue": initial,
        "feedback": feedback,
    }
    kind = "rework" if initial else "labeling"
    html = '<crowd-form><crowd-semantic-segmentation name="crowd-semantic-segmentation" labels="[]">'
    return Task("gtaudit-label-r1", kind, "0", {"source-ref": image_uri, "object-id": object_id}, task_input, html, 1)


def audit_task(mask_uri: str, original: str, language: str = "en") -> Task:
    task_input = {
        "objectId": "scene-1",
        "round": 1,
        "original": original,
        "overlay": original,
        "mask": mask_uri,
        "legend": LEGEND,
        "labelers": [],
        "agreement": None,
        "reasons": reason_inputs(language),
        "language": language,
    }
    return Task("gtaudit-audit-r1", "audit", "0", {"source-ref": original}, task_input, "<crowd-form>", 1)


def answer_classes(answer: Answer) -> np.ndarray:
    assert answer.content is not None
    png = base64.b64decode(answer.content["crowd-semantic-segmentation"]["labeledImage"]["pngImageData"])
    return decode_mask(png, PALETTE)


def labeled_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero((a > 0) | (b > 0))
    return np.count_nonzero((a == b) & (a > 0)) / union
