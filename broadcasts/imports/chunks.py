"""Checking a CSV's rows in chunks, in file order, spread over worker processes for large files.

Checking a row (mostly its phone number) costs about ten times reading it, so for a large file
every worker reads the whole file but checks only its share of chunks (chunk i goes to worker
i mod n); the caller takes chunks from the workers in turn, which is file order again. Workers
hand back plain tuples, which cost a fraction of the Row objects to pass between processes.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from broadcasts.csv_template import ColumnMap
from broadcasts.imports.bulk import Staged
from broadcasts.imports.phones import normaliser
from broadcasts.imports.reader import CsvFormat, FileError, records
from broadcasts.imports.rows import Rejected, RowChecker
from broadcasts.models import Template

log = logging.getLogger(__name__)

# Files from this size on are checked by worker processes (below it, starting them costs more).
PARALLEL_MIN_BYTES = 4 * 1024 * 1024
# A worker may run this far ahead of the writer (chunks), which bounds memory.
QUEUE_CHUNKS = 2
POLL_SECONDS = 1.0

# (line, reason, detail): the cells are read again for the report, which lists only the first
# rows, so a large file's rejected cells are neither sent between processes nor kept.
RejectedRow = tuple[int, str, str]


@dataclass(slots=True)
class Chunk:
    rows: int  # records read, blank ones left out
    staged: int  # rows that passed the checks, in `payload`
    payload: str  # Staged.payload()
    with_attributes: bool
    rejected: list[RejectedRow] = field(default_factory=list)


def nonblank(items: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    """Records with some content (blank lines and rows of empty cells are skipped)."""
    for line, cells in items:
        if cells and (cells[0].strip() or "".join(cells).strip()):
            yield line, cells


def worker_count(size: int) -> int:
    """How many processes should check a file of `size` bytes (0: check it in this one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(cores or 1, 2) if size >= PARALLEL_MIN_BYTES and (cores or 1) > 1 else 0


def _check(checker: RowChecker, items: list[tuple[int, list[str]]], postgres: bool) -> Chunk:
    staged = Staged(postgres)
    rejected: list[RejectedRow] = []
    for line, cells in items:
        row = checker.check(line, cells)
        if isinstance(row, Rejected):
            rejected.append((row.line, row.reason, row.detail))
        else:
            staged.add(row.line, row.phone, row.params, row.name, row.attributes)
    return Chunk(len(items), staged.rows, staged.payload(), staged.with_attributes, rejected)


def _shares(
    file: BinaryIO, fmt: CsvFormat, chunk_rows: int, index: int, count: int
) -> Iterator[list[tuple[int, list[str]]]]:
    """The data records of chunks index, index+count, … (the header skipped)."""
    rows = nonblank(records(file, fmt))
    next(rows, None)  # the header, checked already
    batch: list[tuple[int, list[str]]] = []
    number = 0
    for item in rows:
        if number % count == index:
            batch.append(item)
            if len(batch) >= chunk_rows:
                yield batch
                batch = []
                number += 1
        else:
            batch.append(item)  # only counted: cheaper than a second counter per row
            if len(batch) >= chunk_rows:
                batch = []
                number += 1
    if batch and number % count == index:
        yield batch


def local_chunks(
    file: BinaryIO, fmt: CsvFormat, checker: RowChecker, chunk_rows: int, postgres: bool
) -> Iterator[Chunk]:
    """Every chunk, checked in this process."""
    for items in _shares(file, fmt, chunk_rows, 0, 1):
        yield _check(checker, items, postgres)


def _worker(
    path: str,
    fmt: CsvFormat,
    columns: ColumnMap,
    template: Template | None,
    region: str | None,
    chunk_rows: int,
    postgres: bool,
    index: int,
    count: int,
    out: Any,
    assume_international: bool,
) -> None:
    try:
        normalise = normaliser(region, assume_international=assume_international)
        checker = RowChecker(columns, template, normalise)
        with open(path, "rb") as file:
            for items in _shares(file, fmt, chunk_rows, index, count):
                out.put(("chunk", _check(checker, items, postgres)))
        out.put(("end", None))
    except FileError as exc:
        out.put(("file_error", str(exc)))
    except BaseException as exc:  # the parent reports it; a worker never dies silently
        out.put(("error", f"{type(exc).__name__}: {exc}"))


def parallel_chunks(
    path: str,
    fmt: CsvFormat,
    columns: ColumnMap,
    template: Template | None,
    region: str | None,
    chunk_rows: int,
    postgres: bool,
    workers: int,
    *,
    assume_international: bool,
) -> Iterator[Chunk]:
    """Every chunk in file order, checked by `workers` processes reading the file at `path`
    (each with the phone rules of `region` and `assume_international`, as the caller's)."""
    # spawn, not fork: the caller may be a web or RQ process with threads and open connections.
    context = multiprocessing.get_context("spawn")
    queues = [context.Queue(maxsize=QUEUE_CHUNKS) for _ in range(workers)]
    processes = [
        context.Process(
            target=_worker,
            args=(
                path,
                fmt,
                columns,
                template,
                region,
                chunk_rows,
                postgres,
                k,
                workers,
                q,
                assume_international,
            ),
            name=f"import-check-{k}",
            daemon=True,
        )
        for k, q in enumerate(queues)
    ]
    for process in processes:
        process.start()
    try:
        k = 0
        while True:
            kind, value = _next(queues[k], processes[k])
            if kind == "end":
                # Chunks go round: once one worker has no next chunk, no worker has.
                for other in range(workers):
                    if other != k and _next(queues[other], processes[other])[0] != "end":
                        raise RuntimeError("import workers disagree about the end of the file")
                return
            yield value
            k = (k + 1) % workers
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join(timeout=10)
        for q in queues:
            q.close()
            q.cancel_join_thread()


def _next(source: Any, process: Any) -> tuple[str, Any]:
    while True:
        try:
            kind, value = source.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if not process.is_alive():
                raise RuntimeError(
                    f"an import worker stopped unexpectedly (exit code {process.exitcode})"
                ) from None
            continue
        if kind == "file_error":
            raise FileError(value)
        if kind == "error":
            log.error("import worker failed: %s", value)
            raise RuntimeError(f"an import worker failed: {value}")
        return kind, value
