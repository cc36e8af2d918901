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
