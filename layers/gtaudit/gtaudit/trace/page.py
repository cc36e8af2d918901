"""The report as one self-contained HTML page: key figures, charts, and the tables.

The page has no scripts and loads nothing: charts are inline SVG, styles are inline CSS, so it
can be mailed, archived or opened offline (and the team server shows it sandboxed). Everything
that comes from the table (worker IDs, job and class names) is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from gtaudit.trace.charts import REJECT_WARN, accuracy_chart, hours_chart, pct, rejection_chart, short_id
from gtaudit.trace.columns import (
    AUDITOR_COLUMNS,
    CLASS_COLUMNS,
    DAY_COLUMNS,
    IOUS,
    JOB_COLUMNS,
    WORKER_COLUMNS,
    Columns,
    cell,
    class_names,
    class_pair,
    confusion_grid,
    labelers,
)

_CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK JP",sans-serif;color:#1f2933;
 margin:0;background:#f5f7fa}
main{max-width:1120px;margin:0 auto;padding:28px 32px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:17px;margin:32px 0 10px}h3{font-size:14px;margin:18px 0 6px}
.sub{color:#52606d;margin:0 0 20px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(128px,1fr));gap:10px}
.card{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:12px 14px}
.card b{display:block;font-size:22px;font-weight:600}.card span{color:#616e7c;font-size:12px}
.panel{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:14px 16px;margin-top:12px;overflow-x:auto}
.alert{background:#fdecea;border:1px solid #f5c2c0;color:#8a1c1c;border-radius:8px;padding:10px 14px;margin-top:14px}
table{border-collapse:collapse;width:100%;font-size:13px}
th{text-align:left;color:#52606d;font-weight:600;border-bottom:2px solid #e4e7eb;padding:6px 8px}
td{border-bottom:1px solid #f0f2f5;padding:6px 8px}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr.flagged td{background:#fdecea}
.flag{background:#c62828;color:#fff;border-radius:4px;padding:1px 6px;font-size:11px;font-weight:600}
.bad{color:#c62828;font-weight:600}.good{color:#2e7d32}.muted{color:#9aa5b1}
.legend{display:flex;flex-wrap:wrap;gap:6px 14px;font-size:12px;color:#3e4c59;margin-top:6px}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
footer{color:#7b8794;font-size:12px;margin-top:28px}
"""


def _heat(iou: float | None) -> str:
    """A cell background from red (IoU 0.6 or less) through yellow (0.8) to green (1.0)."""
    if iou is None:
        return ""
    hue = 120 * min(1.0, max(0.0, (iou - 0.6) / 0.4))
    return f' style="background:hsl({hue:.0f},70%,88%)"'


def _html_table(
    rows: list[dict[str, Any]], columns: Columns, *, short: bool = False, threshold: float | None = None
) -> str:
    if not rows:
        return '<p class="muted">None.</p>'
    numeric = [
        any(isinstance(r.get(k), int | float) and not isinstance(r.get(k), bool) for r in rows) for k, _ in columns
    ]
    head = "".join(f'<th class="{"n" if numeric[i] else ""}">{escape(h)}</th>' for i, (_, h) in enumerate(columns))
    body = []
    for r in rows:
        tds = []
        for i, (k, _) in enumerate(columns):
            v = r.get(k)
            cls = "n" if numeric[i] else ""
            if k == "rejection_rate" and isinstance(v, int | float) and v > REJECT_WARN:
                cls += " bad"
            if k == "gold_iou" and threshold is not None and isinstance(v, int | float) and v < threshold:
                cls += " bad"
            if k == "worker_id" and short:
                text = f'<span title="{escape(str(v))}">{escape(short_id(str(v)))}</span>'
            elif k == "flagged":
                text = f'<span class="flag">gold IoU &lt; {threshold:.2f}</span>' if v and threshold is not None else ""
            else:
                text = escape(cell(k, v))
            tds.append(f'<td class="{cls.strip()}">{text}</td>')
        row_class = ' class="flagged"' if r.get("flagged") else ""
        body.append(f"<tr{row_class}>" + "".join(tds) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _class_grid(report: dict[str, Any]) -> str:
    """Labelers x classes: ``consensus / gold`` IoU, coloured by the gold IoU where known."""
    rows, names = labelers(report), class_names(report)
    if not rows or not names:
        return '<p class="muted">No scored labels in this period.</p>'
    head = "<th>labeler</th><th class='n'>scored</th><th class='n'>gold objs</th>" + "".join(
        f"<th class='n'>{escape(n)}</th>" for n in names
    )
    body = []
    for r in rows:
        cells = []
        for n in names:
            shade = r["gold_class_iou"].get(n)
            shade = r["consensus_class_iou"].get(n) if shade is None else shade
            cells.append(f"<td class='n'{_heat(shade)}>{escape(class_pair(r, n))}</td>")
        row_class = ' class="flagged"' if r["flagged"] else ""
        body.append(
            f'<tr{row_class}><td><span title="{escape(r["worker_id"])}">{escape(short_id(r["worker_id"]))}</span></td>'
            f"<td class='n'>{r['scored_objects']}</td><td class='n'>{r['gold_objects']}</td>{''.join(cells)}</tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _class_table(report: dict[str, Any]) -> str:
    rows = report["classes"]
    if not rows:
        return '<p class="muted">No scored labels in this period.</p>'
    head = "".join(f"<th class='{'' if k == 'class' else 'n'}'>{escape(h)}</th>" for k, h in CLASS_COLUMNS)
    body = []
    for r in rows:
        tds = []
        for k, _ in CLASS_COLUMNS:
            v = r.get(k)
            style = _heat(v) if k in IOUS else ""
            text = f"{v:,}" if isinstance(v, int) else cell(k, v)
            tds.append(f"<td class='{'' if k == 'class' else 'n'}'{style}>{escape(text)}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _confusion_html(cells: list[dict[str, Any]]) -> str:
    """Reference rows x painted columns, each cell shaded by its share of the largest one."""
    if not cells:
        return '<p class="muted">No confusion between classes.</p>'
    axis, pixels = confusion_grid(cells)
    peak = max(pixels.values()) or 1
    head = "<th>reference \\ painted</th>" + "".join(f"<th class='n'>{escape(n)}</th>" for n in axis)
    body = []
    for r in axis:
        tds = []
        for p in axis:
            if p == r:
                tds.append("<td class='n muted'>·</td>")
                continue
            n = pixels.get((r, p), 0)
            if not n:
                tds.append("<td class='n muted'>0</td>")
                continue
            tds.append(f"<td class='n' style=\"background:rgba(214,69,69,{0.08 + 0.6 * n / peak:.2f})\">{n:,}</td>")
        body.append(f"<tr><th>{escape(r)}</th>{''.join(tds)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _flag_alert(report: dict[str, Any]) -> str:
    flagged = [r for r in report["workers"] if r["flagged"]]
    if not flagged:
        return ""
    names = ", ".join(
        f'<b title="{escape(r["worker_id"])}">{escape(short_id(r["worker_id"]))}</b> '
        f"({cell('gold_iou', r['gold_iou'])})"
        for r in flagged
    )
    return (
        f'<div class="alert"><span class="flag">FLAGGED</span> {len(flagged)} labeler(s) with gold IoU below '
        f"{report['gold_threshold']:.2f}: {names}</div>"
    )


def render_html(report: dict[str, Any]) -> str:
    """A self-contained page: key figures, flagged labelers, the charts, and the tables."""
    t = report["totals"]
    f = report["filters"]
    period = " – ".join(x for x in ((f.get("since") or "")[:10], (f.get("until") or "")[:10]) if x)
    days = report["days"]
    if not period and days:
        period = f"{days[0]['day']} – {days[-1]['day']}"
    scope = "".join(f" · {k} {escape(str(f[k]))}" for k in ("job", "worker") if f.get(k))
    threshold = float(report["gold_threshold"])
    cards = [
        (str(t["tasks"]), "tasks submitted"),
        (str(t["objects"]), "objects worked"),
        (f"{t['active_hours']:.1f}", "active hours"),
        (f"{t['wall_hours']:.1f}", "wall-clock hours"),
        (pct(t["first_pass_acceptance_rate"]), "first-pass acceptance"),
        (pct(t["rejection_rate"]), "labels rejected by audit"),
        (str(t["returned_tasks"]), "tasks returned / declined"),
        (cell("consensus_iou", t["consensus_iou"]), "IoU against the consensus"),
        (cell("gold_iou", t["gold_iou"]), "IoU against gold truths"),
        (str(t["flagged_labelers"]), f"labelers below {threshold:.2f} gold IoU"),
        (pct(t["catch_rate"]), "seeded defects caught"),
        (pct(t["auditor_agreement"]), "auditor agreement"),
    ]
    card_html = "".join(f"<div class='card'><b>{escape(v)}</b><span>{escape(k)}</span></div>" for v, k in cards)
    note = ""
    if t["tasks_missing_time"]:
        note = (
            f"<p class='muted'>{t['tasks_missing_time']} task(s) came from older worker-response files without "
            "acceptanceTime / timeSpentInSeconds: they are counted as tasks but add no hours.</p>"
        )
    gold_confusion = ""
    if report["gold_confusion"]:
        gold_confusion = f"<h3>Against the gold truth</h3>{_confusion_html(report['gold_confusion'])}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>gtaudit worker report {escape(period)}</title><style>{_CSS}</style></head>
<body><main>
<h1>Labeling and audit: worker report</h1>
<p class="sub">{escape(period or "all time")}{scope} · {len(report["workers"])} workers · {len(report["jobs"])} jobs
 · generated {escape(report["generated_at"])}</p>
<div class="cards">{card_html}</div>{_flag_alert(report)}
<h2>Active hours per worker per day</h2>
<div class="panel">{hours_chart(report)}</div>
<h2>Rejection rate of each labeler's labels</h2>
<div class="panel">{rejection_chart(report)}
<p class="muted">A label is judged once per object and round; with several auditors any reject counts.
 Red: above {REJECT_WARN * 100:.0f}%.</p></div>
<h2>Speed against accuracy</h2>
<div class="panel">{accuracy_chart(report)}
<p class="muted">IoU against gold truths where the labeler labeled a gold object, else against the consensus
 (the vote of the other labelers); micro-averaged over pixels of every scored object and class.</p></div>
<h2>Workers</h2>
<div class="panel">{_html_table(report["workers"], WORKER_COLUMNS, short=True, threshold=threshold)}{note}</div>
<h2>Labeler accuracy per class</h2>
<div class="panel">{_class_grid(report)}
<p class="muted">Each cell: consensus IoU / gold IoU on that class; colour: the gold IoU where known, else the
 consensus IoU.</p></div>
<h2>Auditors</h2>
<div class="panel">{_html_table(report["auditors"], AUDITOR_COLUMNS, short=True)}
<p class="muted">Defects: seeded known-bad masks shown; caught: rejected with the defect's reason (another reason
 is counted apart and not in the catch rate). Clean: known-good masks shown; false rej: rejected. Agreement: share
 of verdict pairs with another auditor on the same object and audit job that agree.</p></div>
<h2>Classes</h2>
<div class="panel">{_class_table(report)}
<h3>Confusion against the consensus: pixels of the reference class painted as another</h3>
{_confusion_html(report["confusion"])}{gold_confusion}</div>
<h2>Jobs</h2>
<div class="panel">{_html_table(report["jobs"], JOB_COLUMNS)}</div>
<h2>Days</h2>
<div class="panel">{_html_table(report["days"], DAY_COLUMNS)}</div>
<footer>{escape(report["schema"])} · table {escape(str(report.get("table") or "-"))}. Active time is
 Ground Truth's timeSpentInSeconds; wall time runs from acceptance to submission.</footer>
</main></body></html>
"""
