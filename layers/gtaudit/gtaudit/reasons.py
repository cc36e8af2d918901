"""The audit's rejection reason codes, shared by the audit template, audit_post and the reports."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reason:
    """A rejection reason: a stable code (used in answers and reports) and its text per language."""

    code: str
    en: str
    ja: str

    def text(self, language: str) -> str:
        """The reason's text in ``language`` (``en`` or ``ja``), English otherwise."""
        return self.ja if language == "ja" else self.en


REASONS: tuple[Reason, ...] = (
    Reason(
        "missing-object",
        "Missing object: something that should be labeled is not",
        "未ラベル: ラベルすべき対象が塗られていない",
    ),
    Reason("wrong-class", "Wrong class: a region has the wrong label", "クラス誤り: 領域のラベルが違う"),
    Reason(
        "loose-boundary",
        "Loose boundary: edges do not follow the object",
        "境界が粗い: 輪郭が対象に沿っていない",
    ),
    Reason(
        "extra-region",
        "Extra region: something is labeled that should not be",
        "余分な領域: 対象でない所が塗られている",
    ),
    Reason("other", "Other (see comment)", "その他 (コメント参照)"),
)
REASON_CODES: frozenset[str] = frozenset(r.code for r in REASONS)


def reason_inputs(language: str) -> list[dict[str, str]]:
    """The reason list as a template's ``task.input`` carries it: ``[{"code", "text"}]``."""
    return [{"code": r.code, "text": r.text(language)} for r in REASONS]
