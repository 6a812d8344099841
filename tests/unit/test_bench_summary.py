"""The measured ÷ goal table and how `make bench BENCH_WRITE_DOCS=1` writes it into the docs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from benchmarks import summary
from benchmarks.summary import BEGIN, END, Row


def _rows() -> list[Row]:
    return [
        Row("CSV import, 10 rows", "SQLite", 30_000, 60_000, "rows/s", True, {"importer": 0.01}),
        Row("single-status webhook POSTs, p99", "PostgreSQL", 50, 100, "ms", False),
    ]


def test_ratios_read_the_same_way_whichever_direction_is_better() -> None:
    import_rate, p99 = _rows()
    assert import_rate.ratio == pytest.approx(0.5)
    assert p99.ratio == pytest.approx(2.0)


def test_the_dated_table_says_when_by_what_and_under_which_load() -> None:
    when = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)
    block = summary.dated(_rows(), "make bench BENCH=import", when, load="load average 1.0")
    assert block.startswith("Measured 2026-12-01 12:30 UTC by `make bench BENCH=import`; load")
    assert "| CSV import, 10 rows | SQLite | 30,000.0 rows/s | ≥ 60,000 rows/s | 0.50 |" in block
    assert "| ≤ 100 ms | 2.00 |" in block


def test_writing_the_docs_replaces_only_what_is_between_the_markers(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text(f"# Performance\n\nprose before\n\n{BEGIN}\nold table\n{END}\n\nprose after\n")
    summary.write_docs("newer table", page)
    summary.write_docs("newest table", page)
    assert page.read_text() == (
        f"# Performance\n\nprose before\n\n{BEGIN}\nnewest table\n{END}\n\nprose after\n"
    )


def test_a_page_without_markers_is_refused_before_anything_runs(tmp_path: Path) -> None:
    page = tmp_path / "performance.md"
    page.write_text("# Performance\n\nno markers here\n")
    with pytest.raises(ValueError, match="no .* lines to write the table between"):
        summary.check_docs_page(page)
    with pytest.raises(ValueError, match="no .* lines to write the table between"):
        summary.write_docs("table", page)
    assert page.read_text() == "# Performance\n\nno markers here\n"


def test_the_committed_performance_page_has_its_markers() -> None:
    summary.check_docs_page()
    assert Path(__file__).parents[2] / "docs" / "performance.md" == summary.DOCS_PAGE


def test_a_lower_is_better_figure_of_zero_reads_as_met() -> None:
    none_throttled = Row("send at 1,000/s: 130429 answers", "PostgreSQL", 0, 20, "", False)
    block = summary.render([none_throttled])
    assert "| ≤ 20  | ∞ (met) |" in block and "inf" not in block
