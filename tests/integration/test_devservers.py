"""Private Redis and PostgreSQL: started when nothing answers at the default, stopped after."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from bot.ops import devservers
from bot.ops.demo_stack import free_port
from broadcasts.db import make_engine
from migrations import run_upgrade
from tests import conftest


def _closed_port() -> int:
    """A loopback port nothing listens on (free_port binds it, then lets it go)."""
    return free_port()


def _private_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("broadcast-bot-*"))


def test_private_redis_runs_rq_jobs_when_the_default_port_is_closed_and_is_gone_after() -> None:
    default = f"redis://127.0.0.1:{_closed_port()}/0"
    choice = devservers.choose(devservers.REDIS, default, configured_by=None)
    server = choice.server
    assert server is not None
    try:
        assert choice.url == server.url != default
        assert f"nothing usable at {default}" in choice.line
        assert "started a private Redis" in choice.line
        assert "\n" not in choice.line
        client = Redis.from_url(f"{choice.url}/3")
        version = tuple(int(x) for x in str(client.info("server")["redis_version"]).split("."))
        assert version >= devservers.MIN_REDIS_VERSION
        queue = Queue("devservers", connection=client)
        job = queue.enqueue(len, "abcd")
        SimpleWorker([queue], connection=client).work(burst=True)
        assert job.return_value(refresh=True) == 4
        client.close()
    finally:
        choice.stop()
    assert server.process.poll() is not None
    assert not server.directory.exists()
    assert devservers.redis_problem(server.url, timeout=1) is not None


def test_private_postgres_takes_the_migrations_when_the_default_port_is_closed() -> None:
    default = f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/test"
    choice = devservers.choose(devservers.POSTGRES, default, configured_by=None)
    server = choice.server
    assert server is not None
    try:
        assert "started a private PostgreSQL" in choice.line
        parts = make_url(choice.url)
        with psycopg.connect(
            host=parts.host, port=parts.port, user=parts.username, dbname=parts.database
        ) as conn:
            conn.autocommit = True
            conn.execute('CREATE DATABASE "app"')
        url = parts.set(database="app").render_as_string(hide_password=False)
        run_upgrade(url)
        engine = make_engine(url)
        assert {"broadcasts", "recipients", "inbox_events"} <= set(
            inspect(engine).get_table_names()
        )
        engine.dispose()
    finally:
        choice.stop()
    assert server.process.poll() is not None
    assert not server.directory.exists()
    assert devservers.postgres_problem(server.url, timeout=1) is not None


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        (devservers.REDIS, "redis://:secret@127.0.0.1:{port}/0"),
        (devservers.POSTGRES, "postgresql+psycopg://postgres:secret@127.0.0.1:{port}/test"),
    ],
)
def test_a_configured_server_that_does_not_answer_is_one_line_and_starts_nothing(
    kind: devservers.Kind, url: str
) -> None:
    before = _private_dirs()
    with pytest.raises(devservers.ServerUnavailable) as raised:
        devservers.choose(kind, url.format(port=_closed_port()), configured_by="SOME_URL")
    message = str(raised.value)
    assert f"{kind.name} at " in message
    assert "(from SOME_URL) is not usable" in message
    assert "refused" in message.lower()
    assert "unset SOME_URL" in message
    assert "secret" not in message
    assert "\n" not in message
    assert _private_dirs() <= before


def test_a_default_that_answers_is_used_and_nothing_is_started() -> None:
    for kind, url in (
        (devservers.REDIS, conftest.REDIS_BASE_URL),
        (devservers.POSTGRES, conftest.POSTGRES_ADMIN_URL),
    ):
        choice = devservers.choose(kind, url, configured_by=None)
        assert choice.server is None
        assert choice.url == url
        assert choice.line == f"{kind.name}: {url} (the default address)."


def test_the_servers_found_are_builds_we_can_start() -> None:
    binary, version, _source = devservers.find_redis_server()
    assert binary.exists()
    assert tuple(int(x) for x in version.split(".")) >= devservers.MIN_REDIS_VERSION
    bindir, _ = devservers.find_postgres_bin()
    assert (bindir / "initdb").exists()
    assert (bindir / "postgres").exists()


def test_directories_left_by_killed_runs_are_removed_but_live_ones_kept(tmp_path: Path) -> None:
    old = time.time() - devservers.STALE_AFTER - 60
    killed = tmp_path / f"{devservers.POSTGRES_PREFIX}killed"
    (killed / "data").mkdir(parents=True)
    (killed / "postgres.log").write_text("LOG:  database system is shut down\n")
    # A server that died without removing its pid file: the pid no longer runs.
    dead = tmp_path / f"{devservers.POSTGRES_PREFIX}dead"
    (dead / "data").mkdir(parents=True)
    live = tmp_path / f"{devservers.POSTGRES_PREFIX}live"
    (live / "data").mkdir(parents=True)
    (live / "data" / "postmaster.pid").write_text(f"{os.getpid()}\n/data\n")
    young = tmp_path / f"{devservers.POSTGRES_PREFIX}starting"
    young.mkdir()
    for directory in (killed, dead, live):
        os.utime(directory, (old, old))
    dead_pid = _a_pid_that_has_exited()
    (dead / "data" / "postmaster.pid").write_text(f"{dead_pid}\n/data\n")
    os.utime(dead, (old, old))

    removed = devservers.remove_stale_postgres_directories(tmp_path)

    assert sorted(removed) == sorted([killed, dead])
    assert not killed.exists()
    assert not dead.exists()
    assert live.exists()
    assert young.exists()


def _a_pid_that_has_exited() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid
