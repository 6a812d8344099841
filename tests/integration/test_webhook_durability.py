"""A webhook answered 200 is in the database even when the web process is killed right after."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broadcasts.models import InboxEvent
from jobs.inbox import dedup_key
from tests.webhook_support import (
    APP_SECRET,
    meta_headers,
    meta_statuses,
    private_redis_url,
    status,
)

redis_url = pytest.fixture(private_redis_url)

BODIES = 3000
KILL_AFTER_ACKS = 200  # enough for group commits to be in flight when the process dies
CONNECTIONS = 48


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def web(db_url: str, redis_url: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`broadcast-bot web` as a real process (one server process, so one inbox writer)."""
    port = free_port()
    environ = {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "LOG_LEVEL": "warning",
    }
    command = [sys.executable, "-m", "bot.cli.main", "web", "--host", "127.0.0.1"]
    proc = subprocess.Popen([*command, "--port", str(port), "--workers", "1"], env=environ)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"`broadcast-bot web` exited with {proc.returncode}"
            assert time.monotonic() < deadline, "`broadcast-bot web` did not start"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def post_until_killed(base: str, proc: subprocess.Popen[bytes]) -> list[bytes]:
    """Post signed bodies from many connections; SIGKILL the server once enough were answered.
    Returns the bodies answered 200 before it died."""
    bodies = [
        meta_statuses(status(f"wamid.kill.{i}", "delivered", 1_780_000_000)) for i in range(BODIES)
    ]
    pending = iter(bodies)
    acked: list[bytes] = []
    url = base + "/webhooks/whatsapp"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONNECTIONS)) as client:

        async def sender() -> None:
            for raw in pending:
                try:
                    async with client.post(url, data=raw, headers=meta_headers(raw)) as response:
                        await response.read()
                except aiohttp.ClientError:
                    return  # the server is gone
                if response.status == 200:
                    acked.append(raw)
                    if len(acked) == KILL_AFTER_ACKS:
                        proc.send_signal(signal.SIGKILL)

        await asyncio.gather(*(sender() for _ in range(CONNECTIONS)))
    return acked


def test_every_body_answered_200_is_stored_when_the_server_is_killed_mid_burst(
    web: tuple[subprocess.Popen[bytes], str], sessions: sessionmaker[Session]
) -> None:
    proc, base = web
    acked = asyncio.run(post_until_killed(base, proc))
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the server was meant to die mid-burst"
    assert KILL_AFTER_ACKS <= len(acked) < BODIES
    with sessions() as s:
        stored = set(s.scalars(select(InboxEvent.dedup_key)))
    missing = [raw for raw in acked if dedup_key("meta", raw) not in stored]
    assert missing == [], f"{len(missing)} of {len(acked)} acknowledged bodies were not stored"
