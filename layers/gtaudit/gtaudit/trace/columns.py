"""What the report's tables show, in every format: the columns, how a cell reads, the derived grids.

The text table (``render``) and the HTML page (``page``) print the same columns and the same
cell text, so a figure reads alike in a terminal and in a browser.
"""

from __future__ import annotations

from typing import Any

from gtaudit.trace.quality import confusion_axes

Columns = tuple[tuple[str, str], ...]

WORKER_COLUMNS: Columns = (
    ("worker_id", "worker"),
    ("role", "role"),
    ("tasks", "tasks"),
    ("active_hours", "active h"),
    ("wall_hours", "wall h"),
    ("objects_per_hour", "obj/h"),
    ("consensus_iou", "cons IoU"),
    ("gold_iou", "gold IoU"),
    ("flagged", "flag"),
    ("first_pass_acceptance_rate", "1st-pass ok"),
    ("rejection_rate", "rejected"),
    ("labels_judged", "judged"),
    ("returned_tasks", "returned"),
    ("tasks_missing_time", "no time"),
)
AUDITOR_COLUMNS: Columns = (
    ("worker_id", "auditor"),
    ("audits", "audits"),
    ("defects_shown", "defects"),
    ("caught", "caught"),
    ("caught_other_reason", "other reason"),
    ("missed", "missed"),
    ("catch_rate", "catch rate"),
    ("clean_shown", "clean"),
    ("false_rejects", "false rej"),
    ("false_reject_rate", "false-rej rate"),
    ("agreement", "agreement"),
    ("agreement_pairs", "pairs"),
)
CLASS_COLUMNS: Columns = (
    ("class", "class"),
    ("consensus_iou", "agreement IoU"),
    ("gold_iou", "gold IoU"),
    ("consensus_union", "consensus px"),
    ("gold_union", "gold px"),
)
JOB_COLUMNS: Columns = (
    ("job", "job"),
    ("stage", "stage"),
    ("round", "round"),
    ("tasks", "tasks"),
    ("workers", "workers"),
    ("objects", "objects"),
    ("active_hours", "active h"),
    ("wall_hours", "wall h"),
    ("objects_rejected", "rejected"),
    ("rejection_rate", "reject rate"),
)
DAY_COLUMNS: Columns = (
    ("day", "day"),
    ("tasks", "tasks"),
    ("workers", "workers"),
    ("active_hours", "active h"),
    ("wall_hours", "wall h"),
    ("returned_tasks", "returned"),
)
RATES = frozenset({"rejection_rate", "first_pass_acceptance_rate", "catch_rate", "false_reject_rate", "agreement"})
IOUS = frozenset({"consensus_iou", "gold_iou"})
FLAG = "FLAGGED"


def cell(key: str, value: Any) -> str:
    """One cell's text: rates as percentages, IoUs to three places, ``-`` for unknown."""
    if key == "flagged":
        return FLAG if value else ""
    if value is None:
        return "-"
    if key in RATES and isinstance(value, int | float):
        return f"{value * 100:.1f}%"
    if key in IOUS and isinstance(value, int | float):
        return f"{value:.3f}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def labelers(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The worker rows that have an accuracy: scored against the consensus or a gold truth."""
    return [r for r in report["workers"] if r["consensus_iou"] is not None or r["gold_iou"] is not None]


def class_names(report: dict[str, Any]) -> list[str]:
    """Every class some labeler was scored on, by name."""
    return sorted({c for r in labelers(report) for c in (*r["consensus_class_iou"], *r["gold_class_iou"])})


def class_pair(row: dict[str, Any], name: str) -> str:
    """A labeler's ``consensus / gold`` IoU on one class (``-`` where unknown)."""
    gold, cons = row["gold_class_iou"].get(name), row["consensus_class_iou"].get(name)
    if gold is None and cons is None:
        return "-"
    return f"{cell('consensus_iou', cons)} / {cell('gold_iou', gold)}"


def labeler_class_columns(report: dict[str, Any]) -> tuple[Columns, list[dict[str, Any]]]:
    """The per-class accuracy grid: one row per labeler, one ``consensus / gold`` column per class."""
    names = class_names(report)
    columns: Columns = (
        ("worker_id", "labeler"),
        ("scored_objects", "scored"),
        ("gold_objects", "gold objs"),
        *((f"class:{n}", n) for n in names),
    )
    rows = [
        {
            "worker_id": r["worker_id"],
            "scored_objects": r["scored_objects"],
            "gold_objects": r["gold_objects"],
            **{f"class:{n}": class_pair(r, n) for n in names},
        }
        for r in labelers(report)
    ]
    return columns, rows


def confusion_grid(cells: list[dict[str, Any]]) -> tuple[list[str], dict[tuple[str, str], int]]:
    """The confusion cells as a square grid: the axis (reference rows = painted columns) and the pixels."""
    return confusion_axes(cells), {(c["reference"], c["painted"]): int(c["pixels"]) for c in cells}


def flag_summary(report: dict[str, Any]) -> str | None:
    """One sentence naming the flagged labelers, or ``None`` when nobody is flagged."""
    flagged = [r for r in report["workers"] if r["flagged"]]
    if not flagged:
        return None
    names = ", ".join(f"{r['worker_id']} ({cell('gold_iou', r['gold_iou'])})" for r in flagged)
    return f"{FLAG}: {len(flagged)} labeler(s) with gold IoU below {report['gold_threshold']:.2f}: {names}"
