"""A lane's way to the database: one transaction on a thread (the lane's event loop keeps
sending meanwhile), tried again while the database answers busy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from broadcasts.db import transaction

T = TypeVar("T")
ATTEMPTS = 10


async def in_transaction(sessions: sessionmaker[Session], fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(session, *args)` in a transaction on a thread, retrying a busy database."""

    def call() -> T:
        for attempt in range(ATTEMPTS):
            try:
                with transaction(sessions) as session:
                    return fn(session, *args)
            except OperationalError:
                if attempt == ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    return await asyncio.to_thread(call)
