"""The report's SVG charts: hours per day, rejection rate per labeler, speed against accuracy.

Inline SVG without ``xmlns`` or links, so the page stays self-contained; every worker ID and
other text from the table is escaped, as it may hold anything a person or a file put there.
"""

from __future__ import annotations

from html import escape
from typing import Any

from gtaudit.labels import PALETTE

REJECT_WARN = 0.2  # a rejection rate above this is shown in red


def pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.0f}%"


def short_id(worker: str) -> str:
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
    legend = "".join(f'<span><i style="background:{colors[w]}"></i>{escape(short_id(w))}</span>' for w in workers)
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
        color = "#d64545" if rate > REJECT_WARN else "#3f9142"
        out.append(
            f'<text x="{left - 8}" y="{y + 15}" font-size="12" text-anchor="end" fill="#1f2933">'
            f"{escape(short_id(r['worker_id']))}<title>{escape(r['worker_id'])}</title></text>"
        )
        out.append(f'<rect x="{left}" y="{y + 3}" width="{plot_w}" height="16" fill="#f0f2f5" rx="3"/>')
        out.append(
            f'<rect x="{left}" y="{y + 3}" width="{max(plot_w * rate, 2):.1f}" height="16" fill="{color}" rx="3"/>'
        )
        out.append(
            f'<text x="{left + plot_w + 8}" y="{y + 15}" font-size="12" fill="#3e4c59">'
            f"{pct(rate)} ({r['labels_rejected']} of {r['labels_judged']})</text>"
        )
    out.append("</svg>")
    return "".join(out)


def accuracy_point(row: dict[str, Any]) -> tuple[float, str] | None:
    """A labeler's accuracy for the chart: gold IoU where known, else consensus IoU, and which."""
    if row.get("gold_iou") is not None:
        return float(row["gold_iou"]), "gold"
    if row.get("consensus_iou") is not None:
        return float(row["consensus_iou"]), "consensus"
    return None


def _place_label(
    boxes: list[tuple[float, float, float, float]], x: float, y: float, w: float, right: float
) -> tuple[str, float, float]:
    """Where a dot's label goes: right of it (left near the edge), nudged off labels already placed."""
    anchor, x0 = ("start", x + 9) if x + 9 + w < right else ("end", x - 9 - w)
    for dy in (0, -13, 13, -26, 26, -39, 39):
        box = (x0, y + dy - 10, x0 + w, y + dy + 3)
        if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in boxes):
            break
    boxes.append(box)
    return anchor, (x0 if anchor == "start" else x0 + w), y + dy


def accuracy_chart(report: dict[str, Any]) -> str:
    """Scatter: each labeler's labeling objects per hour (x) against IoU (y), one labelled dot each.

    Filled dots are gold IoU, hollow dots consensus IoU (no gold object scored); red dots are
    flagged labelers; the dashed line is the gold threshold.
    """
    points = []
    unplaced = []
    for row in report["workers"]:
        acc = accuracy_point(row)
        if acc is None:
            continue
        if row.get("labeling_objects_per_hour") is None:
            unplaced.append(row["worker_id"])
            continue
        points.append((float(row["labeling_objects_per_hour"]), acc[0], acc[1], row))
    if not points:
        note = " (scored labelers without active time are not placed)" if unplaced else ""
        return f'<p class="muted">No scored labels in this period{note}.</p>'
    threshold = float(report.get("gold_threshold") or 0.0)
    width, height, left, right, top, bottom = 1040, 340, 56, 1016, 14, 44
    plot_h = height - top - bottom
    x_max = _nice_max(max(p[0] for p in points) * 1.08)
    lowest = min([p[1] for p in points] + ([threshold] if threshold else []))
    y_lo = max(0.0, min(0.9, int((lowest - 0.05) * 10) / 10))
    step = 0.1 if 1.0 - y_lo > 0.5 else 0.05

    def px(v: float) -> float:
        return left + (right - left) * v / x_max

    def py(v: float) -> float:
        return top + plot_h * (1.0 - (v - y_lo) / (1.0 - y_lo))

    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="Speed against accuracy">']
    n_steps = round((1.0 - y_lo) / step)
    for i in range(n_steps + 1):
        v = y_lo + step * i
        out.append(f'<line x1="{left}" x2="{right}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#e4e7eb"/>')
        out.append(
            f'<text x="{left - 6}" y="{py(v) + 4:.1f}" font-size="11" text-anchor="end" fill="#616e7c">{v:.2f}</text>'
        )
    for i in range(6):
        v = x_max * i / 5
        out.append(f'<line x1="{px(v):.1f}" x2="{px(v):.1f}" y1="{top}" y2="{top + plot_h}" stroke="#f0f2f5"/>')
        out.append(
            f'<text x="{px(v):.1f}" y="{top + plot_h + 16}" font-size="11" text-anchor="middle" '
            f'fill="#616e7c">{v:g}</text>'
        )
    if y_lo <= threshold <= 1.0:
        y = py(threshold)
        out.append(
            f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d64545" stroke-dasharray="6 4"/>'
        )
        out.append(f'<text x="{right}" y="{y - 5:.1f}" font-size="11" text-anchor="end" fill="#c62828">'
                   f"gold threshold {threshold:.2f}</text>")  # fmt: skip
    boxes: list[tuple[float, float, float, float]] = []
    for x_val, y_val, kind, row in sorted(points, key=lambda p: (-p[1], p[0], p[3]["worker_id"])):
        x, y = px(x_val), py(y_val)
        color = "#d64545" if row.get("flagged") else "#1f77b4"
        fill = color if kind == "gold" else "#ffffff"
        name = str(row["worker_id"])
        label = short_id(name)
        anchor, lx, ly = _place_label(boxes, x, y, 7.0 * len(label), right)
        out.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{fill}" stroke="{color}" stroke-width="2">'
            f"<title>{escape(name)}: {kind} IoU {y_val:.3f}, {x_val:g} objects/h</title></circle>"
        )
        out.append(
            f'<text x="{lx:.1f}" y="{ly + 4:.1f}" font-size="12" text-anchor="{anchor}" fill="#1f2933">'
            f"{escape(label)}</text>"
        )
    mid = top + plot_h / 2
    out.append(
        f'<text x="14" y="{mid:.0f}" font-size="11" fill="#616e7c" transform="rotate(-90 14 {mid:.0f})" '
        'text-anchor="middle">IoU</text>'
    )
    out.append(
        f'<text x="{(left + right) / 2:.0f}" y="{height - 6}" font-size="11" fill="#616e7c" text-anchor="middle">'
        "labeling objects per active hour</text></svg>"
    )
    legend = (
        '<div class="legend"><span><i style="background:#1f77b4;border-radius:50%"></i>gold IoU</span>'
        '<span><i style="border:2px solid #1f77b4;background:#fff;border-radius:50%;width:6px;height:6px">'
        "</i>consensus IoU (no gold object)</span>"
        '<span><i style="background:#d64545;border-radius:50%"></i>flagged: gold IoU below the threshold</span></div>'
    )
    if unplaced:
        legend += (
            '<p class="muted">Scored but without active time (not placed): '
            + ", ".join(escape(short_id(w)) for w in unplaced)
            + "</p>"
        )
    return "".join(out) + legend
