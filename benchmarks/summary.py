"""The table `make bench` ends with: per goal, measured ÷ goal, CPU and memory per process."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

# `make bench BENCH_WRITE_DOCS=1` writes the table between these two lines of the page, so the
# prose around it stays hand-written and the figures come from one run.
DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
BEGIN = "<!-- measured ÷ goal: begin (written by `make bench BENCH_WRITE_DOCS=1`) -->"
END = "<!-- measured ÷ goal: end -->"


@dataclass(frozen=True)
class Row:
    what: str  # the goal's row, as the throughput issue names it
    backend: str  # "SQLite", "PostgreSQL" or "" where the database does not matter
    measured: float
    goal: float
    unit: str
    higher_is_better: bool = True
    # process → CPU seconds per 1,000 items (rows, POSTs, messages) handled by it
    cpu_per_1000: dict[str, float] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # process → peak RSS
    note: str = ""

    @property
    def ratio(self) -> float:
        """measured ÷ goal, turned so that ≥ 1.00 always means the goal is met."""
        if self.higher_is_better:
            return self.measured / self.goal
        return self.goal / self.measured if self.measured else float("inf")


_rows: list[Row] = []


def record(row: Row) -> None:
    """Keep a measured row for the table printed at the end of the run."""
    _rows.append(row)


def rows() -> list[Row]:
    return list(_rows)


def _per_process(values: dict[str, float], digits: int) -> str:
    return ", ".join(f"{name} {value:.{digits}f}" for name, value in values.items()) or "-"


def render(items: list[Row], load: str | None = None) -> str:
    """A Markdown table (pastes into docs/performance.md and issue notes as it is).

    `load` describes the machine's load; by default the load average at the end of the run."""
    if load is None:
        one, five, fifteen = os.getloadavg()
        load = f"load average at the end {one:.1f} / {five:.1f} / {fifteen:.1f}"
    lines = [
        f"{load} on {os.cpu_count()} cores (≥ 1.00 in the ratio column: goal met)",
        "",
        "| what | database | measured | goal | ratio | CPU s per 1,000, per process "
        "| peak RSS MB | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in items:
        sign = "≥" if r.higher_is_better else "≤"
        lines.append(
            f"| {r.what} | {r.backend or '-'} | {r.measured:,.1f} {r.unit} "
            f"| {sign} {r.goal:,.0f} {r.unit} | {_ratio(r.ratio)} "
            f"| {_per_process(r.cpu_per_1000, 3)} | {_per_process(r.peak_rss_mb, 0)} "
            f"| {r.note} |"
        )
    return "\n".join(lines)


def _ratio(ratio: float) -> str:
    # A lower-is-better figure that measured 0 (no 130429 at all) is met however far: say so.
    return "∞ (met)" if ratio == float("inf") else f"{ratio:.2f}"


def dated(
    items: list[Row], command: str, when: datetime | None = None, load: str | None = None
) -> str:
    """The table under one line saying when and by which command it was measured."""
    when = when or datetime.now(UTC)
    return f"Measured {when:%Y-%m-%d %H:%M} UTC by `{command}`; {render(items, load)}"


def _between_markers(text: str, page: Path) -> tuple[int, int]:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{page} has no {BEGIN!r} … {END!r} lines to write the table between")
    return start + len(BEGIN), end


def check_docs_page(page: Path = DOCS_PAGE) -> None:
    """Fail before a long run, not after it, when the table would have nowhere to go."""
    _between_markers(page.read_text(encoding="utf-8"), page)


def write_docs(block: str, page: Path = DOCS_PAGE) -> None:
    """Replace what is between the markers of `page` with `block`; the rest stays as written."""
    text = page.read_text(encoding="utf-8")
    start, end = _between_markers(text, page)
    page.write_text(f"{text[:start]}\n{block}\n{text[end:]}", encoding="utf-8")
