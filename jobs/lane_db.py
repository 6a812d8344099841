"""A lane's way to the database: one transaction on a thread (the lane's event loop keeps
sending meanwhile), tried again while the database answers busy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from broadcasts.db import retrying_transaction

T = TypeVar("T")
ATTEMPTS = 10


async def in_transaction(sessions: sessionmaker[Session], fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(session, *args)` in a transaction on a thread, retrying a busy database."""
    return await asyncio.to_thread(retrying_transaction, sessions, fn, *args, attempts=ATTEMPTS)
