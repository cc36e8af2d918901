"""The labeling stage's pre-annotation step: one manifest line -> the segmentation template's input.

A line that cannot be worked (no image reference, inline text, a file type that is not an image,
an image outside the allowed buckets, malformed rework data) is answered with
``isHumanAnnotationRequired: false`` and a ``skipReason``; the orchestrator lists such objects later.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gtaudit.exceptions import (
    ForbiddenLocationError,
    InvalidLabelSetError,
    InvalidS3UriError,
    ManifestError,
    UnsupportedDataObjectError,
)
from gtaudit.labels import LabelSet, parse_label_set
from gtaudit.manifest import GTAUDIT_KEY, object_id_of
from gtaudit.models.stages import (
    MAX_COMMENT,
    MAX_NOTE_TEXT,
    MAX_NOTES,
    Feedback,
    InitialValue,
    LabelColor,
    LabelingTaskInput,
    PreAnnotationResponse,
    RegionNote,
)
from gtaudit.s3uri import S3Uri, check_allowed, parse_s3_uri, split_allowed

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")  # what Ground Truth's segmentation tool accepts
MASK_EXTENSIONS = (".png",)
LANGUAGES = ("en", "ja")

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "header": "Paint every object in the image with its label",
        "header_rework": "Round {round}: fix the mask the auditor sent back",
        "short": (
            "Pick a label, then paint every object of that class. Follow the object's edges closely.\n"
            "Leave everything that is none of the labels unpainted."
        ),
        "short_rework": (
            "The previous mask is loaded. Fix what the auditor found (see above), keep what is right, then submit."
        ),
        "full": (
            "1. Look at the whole image first and find every object of each label.\n"
            "2. Choose a label in the list, then paint the object with the brush or polygon tool.\n"
            "3. Zoom in at edges: the paint should cover the object and nothing else.\n"
            "4. Paint each object with one label only; where objects overlap, paint the one in front.\n"
            "5. Leave the background (anything that is none of the labels) unpainted.\n"
            "6. In a rework round, the previous mask is loaded: correct it where the auditor's notes point."
        ),
    },
    "ja": {
        "header": "画像内の対象をすべて、そのラベルで塗ってください",
        "header_rework": "ラウンド{round}: 検品で差し戻されたマスクを修正してください",
        "short": (
            "ラベルを選び、そのクラスの対象をすべて塗ってください。輪郭にしっかり沿わせてください。\n"
            "どのラベルにも当たらない部分は塗らずに残してください。"
        ),
        "short_rework": (
            "前回のマスクを読み込んであります。上の指摘を直し、正しい部分はそのままにして提出してください。"
        ),
        "full": (
            "1. まず画像全体を見て、各ラベルの対象をすべて見つけてください。\n"
            "2. 一覧からラベルを選び、ブラシまたはポリゴンで対象を塗ってください。\n"
            "3. 境界は拡大して確認し、対象だけを過不足なく塗ってください。\n"
            "4. 一つの対象には一つのラベルだけを使い、重なる所は手前の対象を塗ってください。\n"
            "5. 背景 (どのラベルにも当たらない部分) は塗らないでください。\n"
            "6. 差し戻しのラウンドでは前回のマスクが読み込まれています。検品の指摘箇所を直してください。"
        ),
    },
}


@dataclass(frozen=True, slots=True)
class PreConfig:
    """What the labeling pre-annotation Lambda reads from its environment."""

    label_set: LabelSet
    language: str
    allowed: tuple[str, ...]


def config_from_env(environ: Mapping[str, str] | None = None) -> PreConfig:
    """Read ``LABEL_SET``, ``TASK_LANGUAGE`` (``en``/``ja``, else ``en``) and ``ALLOWED_BUCKETS``.

    Raises
    ------
    InvalidLabelSetError
        ``LABEL_SET`` is malformed.
    """
    env = os.environ if environ is None else environ
    return _config(env.get("LABEL_SET"), env.get("TASK_LANGUAGE"), env.get("ALLOWED_BUCKETS"))


@lru_cache(maxsize=8)
def _config(label_set: str | None, language: str | None, allowed: str | None) -> PreConfig:
    """Parsed once per distinct setting."""
    lang = (language or "en").strip().lower()
    return PreConfig(parse_label_set(label_set), lang if lang in LANGUAGES else "en", tuple(split_allowed(allowed)))


def labeling_task_input(data_object: Mapping[str, Any], config: PreConfig) -> LabelingTaskInput:
    """Build the segmentation template's ``task.input`` for one data object.

    Parameters
    ----------
    data_object
        The manifest line: ``source-ref`` (or inline ``source``), ``object-id`` and, in a rework
        round, ``gtaudit`` with ``round``, ``previous-mask``, ``color-map`` and ``feedback``.
    config
        The label set, the task language and the allowed image locations.

    Returns
    -------
    LabelingTaskInput

    Raises
    ------
    UnsupportedDataObjectError
        No image reference, inline text, or a file type that is not an image.
    InvalidS3UriError
        ``source-ref`` is not an S3 URI.
    ForbiddenLocationError
        The image is outside the allowed buckets.
    ManifestError
        The rework data (``gtaudit``) is malformed.
    """
    image = _image_uri(data_object, config.allowed)
    rework = _rework(data_object.get(GTAUDIT_KEY), config.allowed)
    labels = [(lb.name, lb.color) for lb in config.label_set.labels]
    if rework.initial_value:
        known = {n for n, _ in labels}
        labels += [(n, m["color"]) for n, m in rework.initial_value.label_mappings.items() if n not in known]
    texts = TEXTS[config.language]
    reworking = rework.initial_value is not None or rework.feedback is not None
    return LabelingTaskInput(
        task_object=str(image),
        object_id=object_id_of(dict(data_object)) or "",
        round=rework.round,
        labels=[n for n, _ in labels],
        label_colors=[LabelColor(label=n, color=c) for n, c in labels],
        language=config.language,
        header=texts["header_rework"].format(round=rework.round) if reworking else texts["header"],
        short_instructions=texts["short_rework"] if reworking else texts["short"],
        full_instructions=texts["full"],
        initial_value=rework.initial_value,
        feedback=rework.feedback,
    )


def pre_labeling(data_object: Mapping[str, Any], config: PreConfig) -> PreAnnotationResponse:
    """The pre-annotation response: the task, or ``isHumanAnnotationRequired: false`` with a ``skipReason``."""
    try:
        return PreAnnotationResponse.task(labeling_task_input(data_object, config))
    except (UnsupportedDataObjectError, InvalidS3UriError, ForbiddenLocationError, ManifestError) as exc:
        return PreAnnotationResponse.skip(object_id_of(dict(data_object)) or "", str(exc))


def _image_uri(data_object: Mapping[str, Any], allowed: Iterable[str]) -> S3Uri:
    """The checked image URI of ``source-ref``."""
    ref = data_object.get("source-ref")
    if ref is None:
        if "source" in data_object:
            raise UnsupportedDataObjectError("inline 'source' text is not an image: segmentation needs 'source-ref'")
        raise UnsupportedDataObjectError("no image reference: the data object has no 'source-ref'")
    uri = parse_s3_uri(ref)
    _check_extension(uri, IMAGE_EXTENSIONS, "image")
    return check_allowed(uri, allowed)


def _check_extension(uri: S3Uri, extensions: tuple[str, ...], what: str) -> None:
    """Refuse a key whose extension is not one of ``extensions``."""
    name = uri.name.lower()
    ext = "." + name.rsplit(".", 1)[1] if "." in name else "(none)"
    if ext not in extensions:
        raise UnsupportedDataObjectError(f"unsupported {what} type {ext[:16]!r}: expected {', '.join(extensions)}")


@dataclass(frozen=True, slots=True)
class _Rework:
    round: int
    initial_value: InitialValue | None
    feedback: Feedback | None


def _rework(raw: Any, allowed: Iterable[str]) -> _Rework:
    """Validate the ``gtaudit`` hand-over data of a rework line (absent on round 1)."""
    if raw is None:
        return _Rework(1, None, None)
    if not isinstance(raw, dict):
        raise ManifestError("malformed rework data: 'gtaudit' must be an object")
    round_no = raw.get("round", 1)
    if not isinstance(round_no, int) or isinstance(round_no, bool) or round_no < 1:
        raise ManifestError("malformed rework data: 'round' must be a positive integer")
    initial = None
    if raw.get("previous-mask") is not None or round_no > 1:
        try:
            mask = parse_s3_uri(raw.get("previous-mask"))
            _check_extension(mask, MASK_EXTENSIONS, "previous mask")
            check_allowed(mask, allowed)
            label_set = LabelSet.from_color_map(raw.get("color-map"))  # type: ignore[arg-type]
        except (InvalidS3UriError, UnsupportedDataObjectError, ForbiddenLocationError) as exc:
            raise ManifestError(f"malformed rework data: previous-mask: {exc}") from None
        except (InvalidLabelSetError, AttributeError) as exc:
            raise ManifestError(f"malformed rework data: color-map: {exc}") from None
        initial = InitialValue(label_mappings=label_set.label_mappings(), src=str(mask))
    feedback = _feedback(raw.get("feedback"))
    return _Rework(round_no, initial, feedback)


def _feedback(raw: Any) -> Feedback | None:
    """The auditor's feedback in the shape the template reads, every list present."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ManifestError("malformed rework data: 'feedback' must be an object")

    def texts(key: str) -> list[str]:
        value = raw.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ManifestError(f"malformed rework data: feedback.{key} must be a list of strings")
        return list(value)

    comment = raw.get("comment") or ""
    if not isinstance(comment, str):
        raise ManifestError("malformed rework data: feedback.comment must be text")
    notes = raw.get("notes") or []
    if not isinstance(notes, list):
        raise ManifestError("malformed rework data: feedback.notes must be a list")
    return Feedback(
        verdict=str(raw.get("verdict") or "reject"),
        reasons=texts("reasons"),
        comment=comment[:MAX_COMMENT],
        notes=[_note(n) for n in notes[:MAX_NOTES]],
        auditors=texts("auditors"),
    )


def _note(raw: Any) -> RegionNote:
    """One region note: its number, position as fractions 0..1 of the image, and text."""
    if not isinstance(raw, dict):
        raise ManifestError("malformed rework data: a feedback note must be an object")
    n, x, y, text = raw.get("n"), raw.get("x"), raw.get("y"), raw.get("text", "")
    numbers_ok = all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1 for v in (x, y)
    )
    if not isinstance(n, int) or isinstance(n, bool) or not numbers_ok or not isinstance(text, str):
        raise ManifestError("malformed rework data: a note needs integer 'n', 'x' and 'y' in 0..1, and 'text'")
    return RegionNote(n=n, x=float(x), y=float(y), text=text[:MAX_NOTE_TEXT])  # type: ignore[arg-type]
