"""Group commit for the webhook inbox: many requests, one INSERT, each answered after the commit."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine, Sequence
from typing import Any

from sqlalchemy import Connection

from broadcasts.models import utcnow
from jobs.inbox import NewEvent, kick, requeue_stale
from jobs.runtime import Runtime
from jobs.telemetry import meter_for

log = logging.getLogger(__name__)

MAX_BATCH = 500
ENQUEUE_GATHER_SECONDS = 0.05  # stored ids wait this long to share one job


class InboxWriter:
    """Collects verified bodies from concurrent requests and writes them in batches.

    While one batch commits, the next requests queue up, so under load each commit carries many
    bodies; a request's `store` returns only once its body is durably committed. Processing is
    queued afterwards (a lost enqueue is found again by `jobs.inbox.requeue_stale`).
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._pending: list[tuple[NewEvent, asyncio.Future[None]]] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._to_enqueue: list[tuple[int, int]] = []
        self._enqueuing = False
        # SQLite has one writer at a time; PostgreSQL gains from a few commits in flight.
        self._writers = 1 if runtime.settings.database_url.startswith("sqlite") else 3

    async def store(self, event: NewEvent) -> None:
        """Return once `event` is committed (or already known); raise if the database failed."""
        self._start()
        assert self._wakeup is not None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((event, future))
        self._wakeup.set()
        await future

    def _start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._run())
        self._spawn(self._requeue_on_startup())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _requeue_on_startup(self) -> None:
        try:
            await asyncio.to_thread(requeue_stale, self.runtime)
        except Exception:
            log.warning("could not requeue unprocessed webhook bodies at startup", exc_info=True)

    async def _run(self) -> None:
        assert self._wakeup is not None
        slots = asyncio.Semaphore(self._writers)
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                await slots.acquire()
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                if not batch:
                    slots.release()
                    break
                self._spawn(self._flush(batch, slots))

    async def _flush(
        self, batch: Sequence[tuple[NewEvent, asyncio.Future[None]]], slots: asyncio.Semaphore
    ) -> None:
        try:
            rows = await asyncio.to_thread(self._write, [event for event, _ in batch])
        except Exception as exc:
            log.error("could not store %d webhook bodies: %s", len(batch), exc)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        finally:
            slots.release()
        for _, future in batch:
            if not future.done():
                future.set_result(None)
        if len(rows) < len(batch):
            duplicates = len(batch) - len(rows)
            meter_for(self.runtime.settings.redis_url).count("webhook_duplicates", n=duplicates)
            log.info(
                "%d of %d webhook bodies were redeliveries", len(batch) - len(rows), len(batch)
            )
        if rows:
            self._to_enqueue += rows
            if not self._enqueuing:
                self._enqueuing = True
                self._spawn(self._enqueue())

    def _write(self, events: list[NewEvent]) -> list[tuple[int, int]]:
        with self.runtime.engine.begin() as conn:
            return store_events(conn, events)

    async def _enqueue(self) -> None:
        """Queue processing for stored rows, gathering a few milliseconds' worth per job."""
        try:
            while self._to_enqueue:
                await asyncio.sleep(ENQUEUE_GATHER_SECONDS)
                rows, self._to_enqueue = self._to_enqueue, []
                try:
                    await asyncio.to_thread(kick, self.runtime.redis)
                except Exception as exc:  # stored already: the sweeper queues them later
                    log.warning(
                        "could not queue %d webhook bodies (%s); the sweeper will", len(rows), exc
                    )
        finally:
            self._enqueuing = False


def store_events(conn: Connection, events: Sequence[NewEvent]) -> list[tuple[int, int]]:
    """Insert in one statement, skipping known dedup keys; (id, body size) of the new rows.

    What `jobs.inbox.insert_events` does, as one driver-level statement taking the batch as a
    JSON document: SQLAlchemy compiled a new multi-row INSERT for every batch size, which was
    about an eighth of a web process's CPU under a burst of single-status webhooks.
    """
    unique = {e.dedup_key: e for e in events}
    if not unique:
        return []
    doc = json.dumps(
        [
            [e.source, e.dedup_key, (e.event_type or "")[:64] or None, e.body]
            for e in unique.values()
        ],
        ensure_ascii=False,
    )
    now = utcnow()
    columns = (
        "INSERT INTO inbox_events (source, dedup_key, event_type, body, received_at, attempts)"
    )
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(
            f"{columns} SELECT e ->> 0, e ->> 1, e ->> 2, e ->> 3, %(now)s, 0"
            " FROM json_array_elements(%(doc)s::json) AS e"
            " ON CONFLICT (dedup_key) DO NOTHING RETURNING id, dedup_key",
            {"now": now, "doc": doc},
        )
    else:
        # The format SQLAlchemy's SQLite DateTime writes (naive UTC), so the ORM reads it alike.
        stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
        rows = conn.exec_driver_sql(
            f"{columns} SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, ?, 0"
            " FROM json_each(?) WHERE true"
            " ON CONFLICT (dedup_key) DO NOTHING RETURNING id, dedup_key",
            (stamp, doc),
        )
    return [(int(event_id), len(unique[key].body)) for event_id, key in rows]
