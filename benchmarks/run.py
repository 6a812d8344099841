"""Run every benchmark module (benchmarks/bench_*.py), or the ones named on the command line,
then print the goals they measured as one table (benchmarks/summary.py); with --write-docs, also
write that table, dated, into docs/performance.md."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

import benchmarks
from benchmarks import summary

SETTLE_BUSY = 0.15  # the machine counts as quiet below this share of its CPU busy
SETTLE_MAX_SECONDS = 90.0


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot (Linux); (0, 0) elsewhere."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def settle() -> None:
    """Wait until the previous benchmark's aftermath (PostgreSQL vacuuming and checkpointing,
    processes exiting) has stopped using the CPU: two quiet seconds in a row, at most
    SETTLE_MAX_SECONDS. Each benchmark then starts on the machine the figures assume."""
    started = time.monotonic()
    quiet = 0
    busy, total = _cpu_times()
    while quiet < 2 and time.monotonic() - started < SETTLE_MAX_SECONDS:
        time.sleep(1.0)
        busy2, total2 = _cpu_times()
        share = (busy2 - busy) / (total2 - total) if total2 > total else 0.0
        busy, total = busy2, total2
        quiet = quiet + 1 if share < SETTLE_BUSY else 0
    print(f"(waited {time.monotonic() - started:.0f} s for a quiet machine)", flush=True)


def main(argv: list[str]) -> int:
    write_docs = "--write-docs" in argv
    argv = [a for a in argv if a != "--write-docs"]
    names = sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )
    wanted = [n if n.startswith("bench_") else f"bench_{n}" for n in argv] or names
    if write_docs:
        summary.check_docs_page()
    for name in wanted:
        if name not in names:
            print(f"unknown benchmark {name!r}; known: {', '.join(names)}", file=sys.stderr)
            return 2
    for name in wanted:
        print(f"\n===== {name} =====", flush=True)
        settle()
        importlib.import_module(f"benchmarks.{name}").main()
    if summary.rows():
        print("\n===== summary: measured ÷ goal =====")
        print(summary.render(summary.rows()), flush=True)
    if write_docs:
        if not summary.rows():
            print(
                "--write-docs: these benchmarks measured no goal; nothing written", file=sys.stderr
            )
            return 1
        command = "make bench BENCH=" + (f'"{" ".join(argv)}"' if argv else '""')
        summary.write_docs(summary.dated(summary.rows(), command))
        print(f"wrote the table into {summary.DOCS_PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
