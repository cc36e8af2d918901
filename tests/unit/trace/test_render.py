"""trace.render: the CSV, table and HTML renderings of a report."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from gtaudit.trace.render import CSV_COLUMNS, render
from gtaudit.trace.report import build_report


def test_csv_table_and_html(sample_report: dict[str, Any]) -> None:
    r = sample_report
    reader = csv.DictReader(io.StringIO(render(r, "csv")))
    assert reader.fieldnames == list(CSV_COLUMNS)
    assert render(build_report([]), "csv") == ",".join(CSV_COLUMNS) + "\n"  # the header never depends on data
    rows = list(reader)
    assert [x["section"] for x in rows].count("worker") == 3 and [x["section"] for x in rows].count("day") == 2
    assert next(x for x in rows if x.get("worker_id") == "w2")["rejection_rate"] == "1.0"
    table = render(r, "table")
    assert "Workers" in table and "33.3%" in table and "w2" in table
    html = render(r, "html")
    assert html.count("<svg") == 2 and "<script" not in html and "src=" not in html and "href=" not in html
    assert "100%" in html and "(2 of 2)" in html  # w2's rejection bar and its counts
    empty = render(build_report([]), "html")
    assert "No timed tasks" in empty and "No audited labels" in empty
    with pytest.raises(ValueError, match="fmt"):
        render(r, "xml")


def test_accuracy_in_every_format(quality_report: dict[str, Any]) -> None:
    table = render(quality_report, "table")
    assert "FLAGGED: 1 labeler(s) with gold IoU below 0.80: sloppy (0.600)" in table
    sloppy = next(line for line in table.splitlines() if line.startswith("sloppy "))
    assert "FLAGGED" in sloppy and "0.500" in sloppy and "0.600" in sloppy
    assert "0.750 / 0.850" in table  # average on car: consensus / gold
    assert "Auditors" in table and "100.0%" in table and "caught" in table
    assert "reference \\ painted" in table and "Confusion against the gold truth" in table

    rows = list(csv.DictReader(io.StringIO(render(quality_report, "csv"))))
    sections = [r["section"] for r in rows]
    assert sections.count("auditor") == 2 and sections.count("class") == 2 and sections.count("confusion") == 3
    flags = {r["worker_id"]: r["flagged"] for r in rows if r["section"] == "worker"}
    assert flags["sloppy"] == "true" and flags["careful"] == "false"
    lax = next(r for r in rows if r["section"] == "auditor" and r["worker_id"] == "lax")
    assert (lax["catch_rate"], lax["false_reject_rate"], lax["agreement"]) == ("0.0", "1.0", "0.5")
    cells = {(r["worker_id"], r["class"]): r for r in rows if r["section"] == "labeler_class"}
    assert (cells[("average", "car")]["consensus_iou"], cells[("average", "car")]["gold_iou"]) == ("0.75", "0.85")
    assert any(r["section"] == "gold_confusion" and r["pixels"] == "15" for r in rows)

    html = render(quality_report, "html")
    assert 'aria-label="Speed against accuracy"' in html and "<script" not in html and "http" not in html
    assert html.count("<circle") == 3  # one dot per scored labeler
    assert 'class="alert"' in html and html.count('<tr class="flagged">') == 2  # workers table and class grid
    assert "gold threshold 0.80" in html and "Confusion against the consensus" in html


def test_html_escapes_worker_and_class_names(quality_items: list[dict[str, Any]]) -> None:
    evil_worker, evil_class = '<img src=x onerror="alert(1)">', "<script>alert(2)</script>"
    items = []
    for it in quality_items:
        it = {**it, "worker_id": evil_worker} if it.get("worker_id") == "sloppy" else dict(it)
        if it["kind"] == "score":
            it["class_iou"] = {evil_class: [1, 2]}
            it["confusion"] = [[evil_class, "BACKGROUND", 5]]
        items.append(it)
    report = build_report(items)
    html = render(report, "html")
    assert "<img" not in html and "<script" not in html and 'onerror="' not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html and "&lt;img src=x" in html
    assert evil_class in render(report, "table")  # plain text is not HTML: shown as it is


def test_chart_places_labelers_without_gold_hollow(quality_items: list[dict[str, Any]]) -> None:
    no_gold = [{k: v for k, v in it.items() if not k.startswith("gold_")} for it in quality_items]
    html = render(build_report(no_gold), "html")
    assert html.count('<circle cx="') == html.count('fill="#ffffff" stroke="#1f77b4"') == 3  # hollow, none red
