"""Run every benchmark module (benchmarks/bench_*.py), or the ones named on the command line,
then print the goals they measured as one table (benchmarks/summary.py); with --write-docs, also
write that table, dated, into docs/performance.md."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import benchmarks
from benchmarks import summary


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
        print(f"\n===== {name} =====", flush=True)
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
