"""The audit (検品) stage, before the auditors: an audit manifest line -> the audit template's task input.

An audit manifest line (written by the orchestrator) describes one labeled object: the original
image, the consolidated mask, its overlay and colour map. ``pre_audit`` turns it into the audit
template's ``task.input``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gtaudit.exceptions import ForbiddenLocationError, InvalidS3UriError, ManifestError
from gtaudit.labels import BACKGROUND
from gtaudit.manifest import GTAUDIT_KEY, object_id_of
from gtaudit.models.stages import AuditTaskInput, LegendEntry, PreAnnotationResponse, ReasonChoice
from gtaudit.reasons import reason_inputs
from gtaudit.s3uri import check_allowed, parse_s3_uri

HEADERS = {
    "en": "Inspect the segmentation: approve it, or reject it with reasons",
    "ja": "セグメンテーションを検品してください: 合格、または理由を付けて差し戻し",
}
INSTRUCTIONS = {
    "en": (
        "Compare the overlay with the original image. Approve if every object is labeled with the "
        "right class and the boundaries follow the objects. Otherwise reject, tick every reason that "
        "applies, and click the image to pin a note where the problem is."
    ),
    "ja": (
        "オーバーレイと元画像を比べてください。すべての対象が正しいクラスで塗られ、境界が対象に沿っていれば合格。"
        "そうでなければ差し戻し、当てはまる理由をすべて選び、問題の場所を画像上でクリックしてメモを付けてください。"
    ),
}


# ---------------------------------------------------------------- audit task input
def legend(color_map: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The colour map as the audit template's legend: ``[{"index", "label", "color"}]``, BACKGROUND dropped."""
    out: list[dict[str, Any]] = []
    for key, entry in color_map.items():
        try:
            index = int(key)
        except (TypeError, ValueError):
            continue
        if index == 0 or not isinstance(entry, Mapping) or entry.get("class-name") == BACKGROUND:
            continue
        name, color = str(entry.get("class-name", "")), str(entry.get("hex-color", ""))
        out.append({"index": index, "label": name, "color": color})
    return sorted(out, key=lambda e: e["index"])


def _uri(value: object, what: str, allowed: Iterable[str]) -> str:
    try:
        return str(check_allowed(parse_s3_uri(value), allowed))
    except (InvalidS3UriError, ForbiddenLocationError) as exc:
        raise ManifestError(f"{what}: {exc}") from exc


def audit_task_input(data_object: Mapping[str, Any], *, language: str, allowed: Iterable[str]) -> AuditTaskInput:
    """Build the audit template's ``task.input`` from an audit manifest line.

    Parameters
    ----------
    data_object
        The audit manifest line (``dataObject`` of the pre-annotation event).
    language
        ``en`` or ``ja``: the header, instructions and reason texts.
    allowed
        Buckets or ``s3://bucket/prefix`` locations the images may come from.

    Returns
    -------
    AuditTaskInput

    Raises
    ------
    ManifestError
        The line is not an audit line, or an image reference is missing, malformed or outside ``allowed``.
    """
    allowed = list(allowed)
    info = data_object.get(GTAUDIT_KEY)
    if not isinstance(info, Mapping) or info.get("stage") != "audit":
        raise ManifestError("not an audit manifest line: no gtaudit.stage == 'audit'")
    oid = object_id_of(dict(data_object))
    if not oid:
        raise ManifestError("the line has no object-id and no source-ref")
    overlay = _uri(info.get("overlay") or data_object.get("source-ref"), "overlay", allowed)
    color_map = info.get("color-map")
    if not isinstance(color_map, Mapping) or not color_map:
        raise ManifestError("color-map is missing")
    agreement = info.get("agreement")
    labelers = info.get("labelers") or []
    round_no = info.get("round", 1)
    lang = language if language in HEADERS else "en"
    return AuditTaskInput(
        object_id=oid,
        round=int(round_no) if isinstance(round_no, int) else 1,
        original=_uri(info.get("original"), "original", allowed),
        overlay=overlay,
        mask=_uri(info.get("mask"), "mask", allowed),
        legend=[LegendEntry.model_validate(e) for e in legend(color_map)],
        labelers=[str(w) for w in labelers] if isinstance(labelers, list) else [],
        agreement=float(agreement) if isinstance(agreement, int | float) else None,
        reasons=[ReasonChoice.model_validate(r) for r in reason_inputs(lang)],
        language=lang,
        header=HEADERS[lang],
        instructions=INSTRUCTIONS[lang],
    )


def pre_audit(data_object: Mapping[str, Any], *, language: str, allowed: Iterable[str]) -> PreAnnotationResponse:
    """The pre-annotation response: the task, or ``isHumanAnnotationRequired: false`` with a skip reason."""
    try:
        return PreAnnotationResponse.task(audit_task_input(data_object, language=language, allowed=allowed))
    except ManifestError as exc:
        return PreAnnotationResponse.skip(object_id_of(dict(data_object)) or "", str(exc))
