"""A whole local deployment in processes: sandbox, web server and workers, on real databases.

Used by the sending benchmark, the kill test and the demo-like checks; everything listens on
127.0.0.1 only and every process is stopped when the stack closes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.ops.demo_stack import free_port, wait_http
from bot.slack import job_handlers
from broadcasts import configs, service
from broadcasts.actors import Actor
from broadcasts.db import transaction
from broadcasts.recipients import NewRecipient, insert_recipients
from jobs.runtime import Runtime
from jobs.settings import Settings
from jobs.whatsapp_sync import sync_templates
from migrations import run_upgrade

BIN = str(Path(sys.executable).with_name("broadcast-bot"))
OPERATOR = Actor(id="bench", via="cli")
APP_SECRET = "bench-app-secret"  # noqa: S105 (local benchmark secret)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (127.0.0.1)
        return json.loads(response.read())


def tree_pids(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live descendants."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for p in tree_pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def peak_rss_mb(pid: int) -> float:
    peak = 0.0
    for p in tree_pids(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return peak


@dataclass
class Stack:
    database_url: str
    redis_url: str
    throughput: int = 80
    latency_ms: float = 200.0
    webhooks: bool = False
    sandbox_speed: float = 1.0
    reply_rate: float = 0.0
    env_extra: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    sandbox_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    log_dir: Path = field(default_factory=lambda: Path("bench-results"))

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_VERIFY_TOKEN": "bench-verify",
            "KAPSO_API_KEY": "sandbox-key",
            "PORT": str(self.web_port),
            "LOG_LEVEL": "WARNING",
            **self.env_extra,
        }

    @property
    def sandbox_root(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(  # noqa: S603 (our own CLI)
            [BIN, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = proc
        return proc

    def start_sandbox(self) -> None:
        args = [
            "sandbox",
            "--port",
            str(self.sandbox_port),
            "--latency-ms",
            str(self.latency_ms),
            "--throughput",
            str(self.throughput),
            "--no-pair-rate",
            "--app-secret",
            APP_SECRET,
            "--speed",
            str(self.sandbox_speed),
            "--reply-rate",
            str(self.reply_rate),
        ]
        if self.webhooks:
            args += ["--webhook-url", f"http://127.0.0.1:{self.web_port}/webhooks/whatsapp"]
        self._spawn("sandbox", *args)
        wait_http(f"{self.sandbox_root}/_sandbox/stats", "sandbox")

    def start_web(self) -> None:
        self._spawn("web", "web", "--host", "127.0.0.1", "--port", str(self.web_port))
        wait_http(f"http://127.0.0.1:{self.web_port}/healthz", "web server")

    def start_worker(self, name: str, *queues: str) -> subprocess.Popen[bytes]:
        args = ["worker"]
        for q in queues:
            args += ["--queue", q]
        return self._spawn(name, *args)

    def start_role(self, name: str, role: str) -> subprocess.Popen[bytes]:
        """One role process, as `broadcast-bot worker` (the supervisor) runs it."""
        return self._spawn(name, "worker", "--role", role)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.processes.pop(name)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(30)

    def close(self) -> None:
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM if name != "sandbox" else signal.SIGKILL)

    def shutdown(self, grace_seconds: float = 15.0) -> None:
        """SIGTERM every process group at once, SIGKILL what is still alive after the grace
        period; never raises, so a failing run still leaves nothing behind."""
        procs = dict(self.processes)
        self.processes.clear()
        for proc in procs.values():
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for proc in procs.values():
            with suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group: children of a stopped parent too
            proc.wait(30)

    # -- data --------------------------------------------------------------------------

    def runtime(self) -> Runtime:
        """A runtime for driving the stack from this process, handlers registered as
        `broadcast-bot` registers them (starting a broadcast here queues a Slack event)."""
        job_handlers.register()
        return Runtime(Settings(database_url=self.database_url, redis_url=self.redis_url))

    def prepare(
        self,
        recipients: int,
        *,
        batch_size: int = 500,
        pause: float = 0.0,
        rate: float | None = None,
        agent_url: str = "http://127.0.0.1:9/agent",
        agent_secret_env: str | None = None,
        config: str = "bench",
        phone_number_id: str = "100200300",
    ) -> str:
        """Migrate, add the sandbox configuration, sync templates, create and fill a broadcast.

        The configuration's agent (created on the first call) posts to `agent_url`; a new
        `config` name with its own `phone_number_id` is another number of the same account."""
        run_upgrade(self.database_url)
        runtime = self.runtime()
        try:
            with transaction(runtime.sessions) as session:
                if configs.get_config_or_none(session, config) is None:
                    if not any(a.name == "bench-agent" for a in configs.list_agents(session)):
                        configs.add_agent(
                            session,
                            name="bench-agent",
                            kind="webhook",
                            url=agent_url,
                            secret_env=agent_secret_env,
                            by=OPERATOR,
                            allow_private_urls=True,
                        )
                    configs.add_config(
                        session,
                        name=config,
                        provider="sandbox",
                        phone_number_id=phone_number_id,
                        business_account_id="900800700",
                        agent="bench-agent",
                        api_base_url=f"{self.sandbox_root}/v24.0",
                        credential_env="KAPSO_API_KEY",
                        by=OPERATOR,
                        throughput_mps=self.throughput,
                    )
                else:
                    configs.set_pacing(session, config, by=OPERATOR, throughput_mps=self.throughput)
                    configs.get_config(session, config).api_base_url = f"{self.sandbox_root}/v24.0"
            sync_templates(runtime, config)
            with transaction(runtime.sessions) as session:
                broadcast = service.create_broadcast(
                    session,
                    name=f"bench {time.strftime('%H:%M:%S')}",
                    config_ref=config,
                    template_ref="holiday_promotion",
                    by=OPERATOR,
                    batch_size=batch_size,
                    batch_pause_seconds=pause,
                    rate_mps=rate,
                )
                base = 14155500000
                numbers = [NewRecipient(f"+{base + i}", {"1": f"R{i}"}) for i in range(recipients)]
                insert_recipients(session, broadcast, numbers)
                return broadcast.id
        finally:
            runtime.close()

    def sandbox_messages(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = get_json(f"{self.sandbox_root}/_sandbox/messages")[
            "messages"
        ]
        return result

    def sandbox_webhooks(self) -> list[dict[str, Any]]:
        """Every webhook event the sandbox posted, with `emitted_at` and `acked_at`."""
        result: list[dict[str, Any]] = get_json(f"{self.sandbox_root}/_sandbox/webhooks")["events"]
        return result

    def sandbox_stats(self) -> dict[str, Any]:
        result: dict[str, Any] = get_json(f"{self.sandbox_root}/_sandbox/stats")
        return result


@contextmanager
def running(stack: Stack) -> Iterator[Stack]:
    try:
        yield stack
    finally:
        stack.close()


def _postgres_admin(*statements: str) -> str:
    """Run statements on the local server's admin database; returns its URL."""
    from sqlalchemy import create_engine, text

    admin_url = os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for statement in statements:
            conn.execute(text(statement))
    admin.dispose()
    return admin_url


def fresh_postgres(name: str) -> str:
    """A new, empty PostgreSQL database on the local server (dropped first if it exists)."""
    admin_url = _postgres_admin(
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
    )
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres(name: str) -> None:
    _postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
