"""Render a ``gtaudit.report/1`` document as a text table, CSV, JSON or a self-contained HTML page.

The HTML page has no scripts and loads nothing: charts are inline SVG, styles are inline CSS,
so it can be mailed, archived or opened offline.
"""

from __future__ import annotations

import csv
import io
import json
from html import escape
from typing import Any

from gtaudit.labels import PALETTE

FORMATS = ("table", "csv", "json", "html")

WORKER_COLUMNS = (
    ("worker_id", "worker"),
    ("role", "role"),
    ("tasks", "tasks"),
    ("active_hours", "active h"),
    ("wall_hours", "wall h"),
    ("objects_per_hour", "obj/h"),
    ("first_pass_acceptance_rate", "1st-pass ok"),
    ("rejection_rate", "rejected"),
    ("labels_judged", "judged"),
    ("returned_tasks", "returned"),
    ("tasks_missing_time", "no time"),
)
JOB_COLUMNS = (
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
DAY_COLUMNS = (
    ("day", "day"),
    ("tasks", "tasks"),
    ("workers", "workers"),
    ("active_hours", "active h"),
    ("wall_hours", "wall h"),
    ("returned_tasks", "returned"),
)
_RATES = {"rejection_rate", "first_pass_acceptance_rate"}
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


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key in _RATES and isinstance(value, int | float):
        return f"{value * 100:.1f}%"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _text_table(title: str, rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...]) -> str:
    cells = [[h for _, h in columns]] + [[_cell(k, r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [title]
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 or not _numeric(c) else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    if not rows:
        lines.append("(none)")
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    return text.replace(".", "", 1).replace("%", "").replace("-", "").isdigit() or text == "-"


def render_table(report: dict[str, Any]) -> str:
    """Three aligned plain-text tables for a terminal."""
    t = report["totals"]
    head = (
        f"{t['tasks']} tasks by {t['workers']} workers on {t['objects']} objects; "
        f"{t['active_hours']:.2f} active h, {t['wall_hours']:.2f} wall h; "
        f"rejection rate {_cell('rejection_rate', t['rejection_rate'])}, "
        f"first-pass acceptance {_cell('first_pass_acceptance_rate', t['first_pass_acceptance_rate'])}"
    )
    parts = [
        head,
        _text_table("Workers", report["workers"], WORKER_COLUMNS),
        _text_table("Jobs", report["jobs"], JOB_COLUMNS),
        _text_table("Days", report["days"], DAY_COLUMNS),
    ]
    return "\n\n".join(parts) + "\n"


def render_csv(report: dict[str, Any]) -> str:
    """One CSV: a ``section`` column (worker, job, day) and the union of the sections' columns."""
    sections = (("worker", "workers"), ("job", "jobs"), ("day", "days"))
    columns = list(CSV_COLUMNS)
    for _, key in sections:  # fields a later gtaudit.report/1 adds go after the fixed ones
        for row in report[key]:
            for col, value in row.items():
                if col not in columns and not isinstance(value, dict):
                    columns.append(col)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for section, key in sections:
        for row in report[key]:
            writer.writerow({"section": section, **{k: ("" if v is None else v) for k, v in row.items()}})
    return buf.getvalue()


# ---------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK JP",sans-serif;color:#1f2933;
 margin:0;background:#f5f7fa}
main{max-width:1120px;margin:0 auto;padding:28px 32px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:17px;margin:32px 0 10px}
.sub{color:#52606d;margin:0 0 20px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(128px,1fr));gap:10px}
.card{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:12px 14px}
.card b{display:block;font-size:22px;font-weight:600}.card span{color:#616e7c;font-size:12px}
.panel{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:14px 16px;margin-top:12px}
table{border-collapse:collapse;width:100%;font-size:13px}
th{text-align:left;color:#52606d;font-weight:600;border-bottom:2px solid #e4e7eb;padding:6px 8px}
td{border-bottom:1px solid #f0f2f5;padding:6px 8px}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#c62828;font-weight:600}.good{color:#2e7d32}.muted{color:#9aa5b1}
.legend{display:flex;flex-wrap:wrap;gap:6px 14px;font-size:12px;color:#3e4c59;margin-top:6px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
footer{color:#7b8794;font-size:12px;margin-top:28px}
"""
_REJECT_WARN = 0.2  # a rejection rate above this is shown in red


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.0f}%"


def _short(worker: str) -> str:
    """``private.us-east-1.3f9c0a12...`` -> ``3f9c0a12``: GT's worker IDs are long and share a prefix."""
    tail = worker.rsplit(".", 1)[-1]
    return tail[:12] if len(tail) > 12 else tail


def _colors(workers: list[str]) -> dict[str, str]:
    return {w: PALETTE[i % len(PALETTE)] for i, w in enumerate(workers)}


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    for step in (0.1, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if v <= step * 5:
            return step * 5
    return v


def hours_chart(report: dict[str, Any]) -> str:
    """Stacked bars: active hours per day, one colour per worker."""
    days = report["days"]
    workers = sorted({w for d in days for w in d["active_hours_by_worker"]})
    if not days or not workers:
        return '<p class="muted">No timed tasks in this period.</p>'
    colors = _colors(workers)
    width, height, left, bottom, top = 1040, 260, 48, 36, 12
    plot_w, plot_h = width - left - 12, height - bottom - top
    peak = _nice_max(max(sum(d["active_hours_by_worker"].values()) for d in days))
    slot = plot_w / len(days)
    bar = min(48.0, slot * 0.7)
    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="Active hours per worker per day">']
    for i in range(6):
        v = peak * i / 5
        y = top + plot_h - plot_h * i / 5
        out.append(f'<line x1="{left}" x2="{width - 12}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e7eb"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#616e7c">{v:g}</text>')
    label_every = max(1, round(len(days) / 14))
    for i, d in enumerate(days):
        x = left + slot * i + (slot - bar) / 2
        y = top + plot_h
        for w in workers:
            h = d["active_hours_by_worker"].get(w, 0.0)
            if h <= 0:
                continue
            ph = plot_h * h / peak
            y -= ph
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{ph:.1f}" fill="{colors[w]}">'
                f"<title>{escape(w)} {escape(d['day'])}: {h:.2f} h</title></rect>"
            )
        total = sum(d["active_hours_by_worker"].values())
        if total > 0:
            out.append(
                f'<text x="{x + bar / 2:.1f}" y="{y - 4:.1f}" font-size="10" text-anchor="middle" '
                f'fill="#52606d">{total:.1f}</text>'
            )
        if i % label_every == 0:
            out.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 16}" font-size="11" text-anchor="middle" '
                f'fill="#3e4c59">{escape(d["day"][5:])}</text>'
            )
    out.append(
        f'<text x="12" y="{top + plot_h / 2:.0f}" font-size="11" fill="#616e7c" '
        f'transform="rotate(-90 12 {top + plot_h / 2:.0f})" text-anchor="middle">active hours</text>'
    )
    out.append("</svg>")
    legend = "".join(f'<span><i style="background:{colors[w]}"></i>{escape(_short(w))}</span>' for w in workers)
    return "".join(out) + f'<div class="legend">{legend}</div>'


def rejection_chart(report: dict[str, Any]) -> str:
    """Horizontal bars: the rejection rate of each labeler's labels, with counts."""
    rows = [r for r in report["workers"] if r["labels_judged"]]
    if not rows:
        return '<p class="muted">No audited labels in this period.</p>'
    rows.sort(key=lambda r: (-(r["rejection_rate"] or 0), r["worker_id"]))
    row_h, left, right = 28, 150, 150
    width = 1040
    height = row_h * len(rows) + 28
    plot_w = width - left - right
    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="Rejection rate per worker">']
    for i in range(5):
        x = left + plot_w * i / 4
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="4" y2="{height - 20}" stroke="#e4e7eb"/>')
        out.append(
            f'<text x="{x:.1f}" y="{height - 6}" font-size="11" text-anchor="middle" fill="#616e7c">{i * 25}%</text>'
        )
    for i, r in enumerate(rows):
        rate = r["rejection_rate"] or 0.0
        y = 6 + i * row_h
        color = "#d64545" if rate > _REJECT_WARN else "#3f9142"
        out.append(
            f'<text x="{left - 8}" y="{y + 15}" font-size="12" text-anchor="end" fill="#1f2933">'
            f"{escape(_short(r['worker_id']))}<title>{escape(r['worker_id'])}</title></text>"
        )
        out.append(f'<rect x="{left}" y="{y + 3}" width="{plot_w}" height="16" fill="#f0f2f5" rx="3"/>')
        out.append(
            f'<rect x="{left}" y="{y + 3}" width="{max(plot_w * rate, 2):.1f}" height="16" fill="{color}" rx="3"/>'
        )
        out.append(
            f'<text x="{left + plot_w + 8}" y="{y + 15}" font-size="12" fill="#3e4c59">'
            f"{_pct(rate)} ({r['labels_rejected']} of {r['labels_judged']})</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _html_table(rows: list[dict[str, Any]], columns: tuple[tuple[str, str], ...], *, short: bool = False) -> str:
    if not rows:
        return '<p class="muted">None.</p>'
    numeric = [any(isinstance(r.get(k), int | float) for r in rows) for k, _ in columns]
    head = "".join(f'<th class="{"n" if numeric[i] else ""}">{escape(h)}</th>' for i, (_, h) in enumerate(columns))
    body = []
    for r in rows:
        tds = []
        for i, (k, _) in enumerate(columns):
            v = r.get(k)
            cls = "n" if numeric[i] else ""
            if k == "rejection_rate" and isinstance(v, int | float) and v > _REJECT_WARN:
                cls += " bad"
            text = _cell(k, v)
            if k == "worker_id" and short:
                text = f'<span title="{escape(str(v))}">{escape(_short(str(v)))}</span>'
            else:
                text = escape(text)
            tds.append(f'<td class="{cls.strip()}">{text}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_html(report: dict[str, Any]) -> str:
    """A self-contained page: key figures, the two charts, and the three tables."""
    t = report["totals"]
    f = report["filters"]
    period = " – ".join(x for x in ((f.get("since") or "")[:10], (f.get("until") or "")[:10]) if x)
    days = report["days"]
    if not period and days:
        period = f"{days[0]['day']} – {days[-1]['day']}"
    scope = "".join(f" · {k} {escape(str(f[k]))}" for k in ("job", "worker") if f.get(k))
    rej = t["rejection_rate"]
    cards = [
        (str(t["tasks"]), "tasks submitted"),
        (str(t["objects"]), "objects worked"),
        (f"{t['active_hours']:.1f}", "active hours"),
        (f"{t['wall_hours']:.1f}", "wall-clock hours"),
        (_pct(t["first_pass_acceptance_rate"]), "first-pass acceptance"),
        (_pct(rej), "labels rejected by audit"),
        (str(t["returned_tasks"]), "tasks returned / declined"),
    ]
    card_html = "".join(f"<div class='card'><b>{escape(v)}</b><span>{escape(k)}</span></div>" for v, k in cards)
    note = ""
    if t["tasks_missing_time"]:
        note = (
            f"<p class='muted'>{t['tasks_missing_time']} task(s) came from older worker-response files without "
            "acceptanceTime / timeSpentInSeconds: they are counted as tasks but add no hours.</p>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>gtaudit worker report {escape(period)}</title><style>{_CSS}</style></head>
<body><main>
<h1>Labeling and audit: worker report</h1>
<p class="sub">{escape(period or "all time")}{scope} · {len(report["workers"])} workers · {len(report["jobs"])} jobs
 · generated {escape(report["generated_at"])}</p>
<div class="cards">{card_html}</div>
<h2>Active hours per worker per day</h2>
<div class="panel">{hours_chart(report)}</div>
<h2>Rejection rate of each labeler's labels</h2>
<div class="panel">{rejection_chart(report)}
<p class="muted">A label is judged once per object and round; with several auditors any reject counts.
 Red: above {_REJECT_WARN * 100:.0f}%.</p></div>
<h2>Workers</h2>
<div class="panel">{_html_table(report["workers"], WORKER_COLUMNS, short=True)}{note}</div>
<h2>Jobs</h2>
<div class="panel">{_html_table(report["jobs"], JOB_COLUMNS)}</div>
<h2>Days</h2>
<div class="panel">{_html_table(report["days"], DAY_COLUMNS)}</div>
<footer>{escape(report["schema"])} · table {escape(str(report.get("table") or "-"))}. Active time is
 Ground Truth's timeSpentInSeconds; wall time runs from acceptance to submission.</footer>
</main></body></html>
"""
