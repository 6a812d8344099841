"""The table `make bench` ends with: per goal, measured ÷ goal, CPU and memory per process."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


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


def render(items: list[Row]) -> str:
    """A Markdown table (pastes into the README and issue notes as it is)."""
    load = os.getloadavg()
    lines = [
        f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
        f"on {os.cpu_count()} cores (≥ 1.00 in the ratio column: goal met)",
        "",
        "| what | database | measured | goal | ratio | CPU s per 1,000, per process "
        "| peak RSS MB | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in items:
        sign = "≥" if r.higher_is_better else "≤"
        lines.append(
            f"| {r.what} | {r.backend or '-'} | {r.measured:,.1f} {r.unit} "
            f"| {sign} {r.goal:,.0f} {r.unit} | {r.ratio:.2f} "
            f"| {_per_process(r.cpu_per_1000, 3)} | {_per_process(r.peak_rss_mb, 0)} "
            f"| {r.note} |"
        )
    return "\n".join(lines)
