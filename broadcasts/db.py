"""Engine and session construction; nothing connects at import time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")
log = logging.getLogger(__name__)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Build an engine; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # Several processes write (web, workers): taking the write lock up front turns a stale
    # read-then-write (SQLITE_BUSY_SNAPSHOT, not retried) into an ordinary busy wait.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session


def retrying_transaction(
    factory: sessionmaker[Session], fn: Callable[..., T], *args: Any, attempts: int = 10
) -> T:
    """`fn(session, *args)` in a transaction, run again (each time a little later) while the
    database answers busy or picks it as a deadlock victim: writers that race the same rows
    (lanes recording sends, a user's pause) must not fail for that."""
    for attempt in range(attempts):
        try:
            with transaction(factory) as session:
                return fn(session, *args)
        except OperationalError as exc:
            if attempt == attempts - 1:
                raise
            log.warning("transaction retried after %s", type(exc.orig).__name__)
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")
