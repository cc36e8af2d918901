"""Render a ``gtaudit.report/2`` document as a text table, CSV, JSON or a self-contained HTML page.

The columns and cell text are ``columns``'; the HTML page is ``page`` and its charts ``charts``.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from gtaudit.trace.columns import (
    AUDITOR_COLUMNS,
    CLASS_COLUMNS,
    DAY_COLUMNS,
    JOB_COLUMNS,
    WORKER_COLUMNS,
    Columns,
    cell,
    confusion_grid,
    flag_summary,
    labeler_class_columns,
)
from gtaudit.trace.page import render_html

FORMATS = ("table", "csv", "json", "html")

# The CSV header, fixed so that it does not depend on the data (nested fields are left out).
CSV_COLUMNS = (
    "section",
    "worker_id",
    "role",
    "job",
    "stage",
    "round",
    "day",
    "tasks",
    "workers",
    "objects",
    "active_hours",
    "wall_hours",
    "objects_per_hour",
    "tasks_missing_time",
    "labels_judged",
    "labels_rejected",
    "rejection_rate",
    "first_pass_judged",
    "first_pass_accepted",
    "first_pass_acceptance_rate",
    "objects_approved",
    "objects_rejected",
    "returned_tasks",
    "returned_hours",
    "first_submission",
    "last_submission",
    # gtaudit.report/2: accuracy
    "labeling_objects_per_hour",
    "consensus_iou",
    "gold_iou",
    "scored_objects",
    "gold_objects",
    "flagged",
    "audits",
    "seeded_shown",
    "defects_shown",
    "clean_shown",
    "caught",
    "caught_other_reason",
    "missed",
    "passed",
    "false_rejects",
    "catch_rate",
    "detection_rate",
    "false_reject_rate",
    "agreement_pairs",
    "agreeing_pairs",
    "agreement",
    "class",
    "consensus_inter",
    "consensus_union",
    "gold_inter",
    "gold_union",
    "reference",
    "painted",
    "pixels",
)


def render(report: dict[str, Any], fmt: str) -> str:
    """The report in ``fmt`` (one of ``FORMATS``).

    Raises
    ------
    ValueError
        ``fmt`` is not a known format.
    """
    if fmt == "json":
        return json.dumps(report, ensure_ascii=False, indent=2, allow_nan=False) + "\n"
    if fmt == "csv":
        return render_csv(report)
    if fmt == "table":
        return render_table(report)
    if fmt == "html":
        return render_html(report)
    raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")


def _text_table(title: str, rows: list[dict[str, Any]], columns: Columns) -> str:
    cells = [[h for _, h in columns]] + [[cell(k, r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [title]
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 or not _numeric(c) else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    if not rows:
        lines.append("(none)")
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "", 1).replace("%", "").replace("-", "").isdigit() or text == "-"


def _confusion_table(title: str, cells: list[dict[str, Any]]) -> str:
    """The confusion cells as a matrix: one row per reference class, one column per painted class."""
    axis, pixels = confusion_grid(cells)
    columns: Columns = (("reference", "reference \\ painted"), *((f"p:{n}", n) for n in axis))
    rows = [{"reference": r, **{f"p:{p}": "·" if p == r else f"{pixels.get((r, p), 0):,}" for p in axis}} for r in axis]
    return _text_table(title, rows, columns)


def render_table(report: dict[str, Any]) -> str:
    """Aligned plain-text tables for a terminal, flagged labelers named first."""
    t = report["totals"]
    head = (
        f"{t['tasks']} tasks by {t['workers']} workers on {t['objects']} objects; "
        f"{t['active_hours']:.2f} active h, {t['wall_hours']:.2f} wall h; "
        f"rejection rate {cell('rejection_rate', t['rejection_rate'])}, "
        f"first-pass acceptance {cell('first_pass_acceptance_rate', t['first_pass_acceptance_rate'])}\n"
        f"accuracy: consensus IoU {cell('consensus_iou', t['consensus_iou'])} over {t['scored_objects']} scores, "
        f"gold IoU {cell('gold_iou', t['gold_iou'])} over {t['gold_objects']}; seeded audits "
        f"{t['seeded_shown']}, catch rate {cell('catch_rate', t['catch_rate'])}, "
        f"false-reject rate {cell('false_reject_rate', t['false_reject_rate'])}, "
        f"auditor agreement {cell('agreement', t['auditor_agreement'])}"
    )
    flagged = flag_summary(report)
    grid_columns, grid_rows = labeler_class_columns(report)
    parts = [
        head,
        *([flagged] if flagged else []),
        _text_table("Workers", report["workers"], WORKER_COLUMNS),
        _text_table("Labeler accuracy per class (consensus / gold IoU)", grid_rows, grid_columns),
        _text_table("Auditors (seeded objects and agreement)", report["auditors"], AUDITOR_COLUMNS),
        _text_table("Classes (every labeler, micro-averaged)", report["classes"], CLASS_COLUMNS),
        _confusion_table("Confusion against the consensus (pixels)", report["confusion"]),
    ]
    if report["gold_confusion"]:
        parts.append(_confusion_table("Confusion against the gold truth (pixels)", report["gold_confusion"]))
    parts += [_text_table("Jobs", report["jobs"], JOB_COLUMNS), _text_table("Days", report["days"], DAY_COLUMNS)]
    return "\n\n".join(parts) + "\n"


def _labeler_class_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"worker_id": r["worker_id"], "class": name, "consensus_iou": r["consensus_class_iou"].get(name),
         "gold_iou": r["gold_class_iou"].get(name)}
        for r in report["workers"]
        for name in sorted({*r["consensus_class_iou"], *r["gold_class_iou"]})
    ]  # fmt: skip


def render_csv(report: dict[str, Any]) -> str:
    """One CSV: a ``section`` column and the union of the sections' scalar columns.

    Sections: ``worker``, ``job``, ``day``, ``auditor``, ``class``, ``labeler_class`` (one row per
    labeler and class), ``confusion`` and ``gold_confusion`` (one row per cell).
    """
    sections = (
        ("worker", report["workers"]),
        ("job", report["jobs"]),
        ("day", report["days"]),
        ("auditor", report["auditors"]),
        ("class", report["classes"]),
        ("labeler_class", _labeler_class_rows(report)),
        ("confusion", report["confusion"]),
        ("gold_confusion", report["gold_confusion"]),
    )
    columns = list(CSV_COLUMNS)
    for _, rows in sections:  # fields a later gtaudit.report/2 adds go after the fixed ones
        for row in rows:
            for col, value in row.items():
                if col not in columns and not isinstance(value, dict):
                    columns.append(col)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for section, rows in sections:
        for row in rows:
            writer.writerow({"section": section, **{k: _csv_value(v) for k, v in row.items()}})
    return buf.getvalue()


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):  # as in the JSON, not Python's True/False
        return "true" if value else "false"
    return value
