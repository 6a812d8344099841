"""What sending tests share: a runtime on the test databases, a sandbox, a synced config."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rq import SimpleWorker

from broadcasts import configs, service
from broadcasts.db import transaction
from broadcasts.enums import BroadcastStatus
from broadcasts.lifecycle import READ_ONLY
from broadcasts.metrics import recount, stored_counts
from broadcasts.recipients import NewRecipient, insert_recipients
from jobs import maintenance
from jobs.queues import SEND, queue
from jobs.runtime import Runtime, install
from jobs.settings import Settings
from jobs.whatsapp_sync import sync_templates
from kapso.sandbox.config import SandboxConfig
from kapso.sandbox.runner import Sandbox, run_sandbox
from tests.factories import OPERATOR


@dataclass
class Env:
    runtime: Runtime
    sandbox: Sandbox


@contextmanager
def sending_env(
    db_url: str, redis_url: str, sandbox: SandboxConfig | None = None, **settings: object
) -> Iterator[Env]:
    config = sandbox or SandboxConfig(latency_ms=5, throughput=1000, pair_rate=False)
    with run_sandbox(config) as sb:
        runtime = Runtime(
            Settings(database_url=db_url, redis_url=redis_url, **settings)  # type: ignore[arg-type]
        )
        install(runtime)
        with transaction(runtime.sessions) as session:
            configs.add_agent(
                session,
                name="agent",
                kind="webhook",
                url="http://127.0.0.1:9/a",
                by=OPERATOR,
                allow_private_urls=True,
            )
            configs.add_config(
                session,
                name="main",
                provider="sandbox",
                phone_number_id="100200300",
                business_account_id="900800700",
                api_base_url=sb.base_url,
                credential_env="KAPSO_API_KEY",
                agent="agent",
                throughput_mps=config.throughput,
                batch_size=500,
                batch_pause_seconds=0,
                by=OPERATOR,
            )
        sync_templates(runtime, "main")
        try:
            yield Env(runtime, sb)
        finally:
            runtime.close()


def new_broadcast(
    env: Env, phones: list[str], *, template: str = "holiday_promotion", **pacing: object
) -> str:
    with transaction(env.runtime.sessions) as session:
        broadcast = service.create_broadcast(
            session,
            name=f"B{time.monotonic_ns()}",
            config_ref="main",
            template_ref=template,
            by=OPERATOR,
            **pacing,  # type: ignore[arg-type]
        )
        insert_recipients(session, broadcast, [NewRecipient(p, {"1": "Ana"}) for p in phones])
        return broadcast.id


def work(env: Env) -> None:
    """Drain the send queue once with an in-process worker."""
    SimpleWorker([queue(SEND, env.runtime.redis)], connection=env.runtime.redis).work(
        burst=True, with_scheduler=True, logging_level="WARNING"
    )


def drain(
    env: Env, broadcast_id: str, *, until: frozenset[str] = READ_ONLY, timeout: float = 60
) -> str:
    """Work and tend (as the worker's maintenance loop does) until the broadcast reaches `until`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        work(env)
        maintenance.run_once(env.runtime)
        status = status_of(env, broadcast_id)
        if status in until:
            return status
        time.sleep(0.1)
    raise AssertionError(f"broadcast still {status_of(env, broadcast_id)} after {timeout} s")


def status_of(env: Env, broadcast_id: str) -> str:
    with transaction(env.runtime.sessions) as session:
        return str(service.get_broadcast(session, broadcast_id).status)


def assert_counters_match(env: Env, broadcast_id: str) -> None:
    with transaction(env.runtime.sessions) as session:
        broadcast = service.get_broadcast(session, broadcast_id)
        assert stored_counts(broadcast) == recount(session, broadcast_id)


SENDING = frozenset({BroadcastStatus.SENDING})
