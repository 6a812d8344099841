"""The error report: one CSV row per rejected input row, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import re
import tempfile
from collections.abc import Sequence

# Beyond this many rows the report lists no more (the summary still counts every row).
MAX_REPORT_ROWS = 100_000
REPORT_COLUMNS = ("line", "reason", "detail")
_E164 = re.compile(r"\+[1-9]\d{5,14}")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def safe_cell(value: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection), keeping E.164 numbers readable."""
    if value.startswith(_FORMULA_START) and not _E164.fullmatch(value):
        return "'" + value
    return value


class ErrorReport:
    """Rows written to a temporary file as they come, so memory stays flat."""

    def __init__(self, header: Sequence[str]) -> None:
        self._file = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=4 * 1024 * 1024, mode="w+", encoding="utf-8", newline=""
        )
        self._writer = csv.writer(self._file, lineterminator="\r\n")
        self._writer.writerow([*REPORT_COLUMNS, *(safe_cell(h) for h in header)])
        self.rows = 0
        self.left_out = 0

    def add(self, line: int, reason: str, detail: str, cells: Sequence[str]) -> None:
        if self.rows >= MAX_REPORT_ROWS:
            self.left_out += 1
            return
        self.rows += 1
        self._writer.writerow([line, reason, safe_cell(detail), *(safe_cell(c) for c in cells)])

    def text(self) -> str | None:
        """The whole report, or None when nothing was rejected."""
        if not self.rows:
            return None
        if self.left_out:
            self._writer.writerow(
                ["", "report_truncated", f"{self.left_out} more rejected rows are not listed"]
            )
            self.left_out = 0
        self._file.seek(0)
        return self._file.read()  # one string, not a StringIO and a copy of it

    def close(self) -> None:
        self._file.close()
