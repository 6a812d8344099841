"""Webhook intake: signed POSTs to the real web server, acknowledgement latency, worker drain rate.

For SQLite and PostgreSQL: starts `broadcast-bot web` (uvicorn, httptools, uvloop), seeds a sent
broadcast, then, with no worker running, posts pre-signed Meta status webhooks from a lean load
generator on this machine (benchmarks/http_load.py; its CPU per POST is reported beside the
server's) — single-status bodies, then 100-status batched bodies — and measures accepted
webhooks/s and p50/p99 acknowledgement latency. Then `broadcast-bot worker --burst`
(1, then 2 processes) drains what was stored; it reports status events processed per second.
Checks: every body sent is in the inbox once (zero lost) and counters equal a recount.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import Redis
from sqlalchemy import create_engine, func, insert, select, text, update
from sqlalchemy.engine import make_url

from benchmarks import summary
from benchmarks.http_load import build_post, post_all
from benchmarks.stack import peak_rss_mb
from bot.cli.web import default_workers
from broadcasts.db import make_engine
from broadcasts.metrics import recount, repair_counters, stored_counts
from broadcasts.models import Broadcast, InboxEvent, Recipient, utcnow
from kapso.webhooks import sign
from migrations import run_upgrade

BIN = str(Path(sys.executable).with_name("broadcast-bot"))
SECRET = "bench-app-secret"  # noqa: S105 (signs local benchmark traffic only)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
POSTGRES_ADMIN = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SINGLE_POSTS = 6000
BATCH_POSTS = 120
BATCH_SIZE = 100
CONCURRENCY = 64
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "0"))  # 0: `web`'s own default
GOAL_SINGLE = 2000.0
JSON = {"Content-Type": "application/json"}
GOAL_BATCHED_EVENTS = 3000.0
GOAL_P99_MS = 100.0


@dataclass
class Load:
    posts: int
    events: int
    ok: int
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds

    @property
    def events_per_second(self) -> float:
        return self.events * self.ok / self.posts / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (Linux /proc), in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def wait_until_up(web: subprocess.Popen[bytes], base: str) -> None:
    """Until every server process answers /healthz (a loaded machine takes a while to start)."""
    deadline = time.monotonic() + 180
    answered = 0
    while answered < 20:  # several in a row: the connection lands on each process
        if web.poll() is not None:
            raise SystemExit(f"`broadcast-bot web` exited with {web.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit("`broadcast-bot web` did not answer /healthz within 180 s")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as response:  # noqa: S310
                answered += response.status == 200
        except OSError:
            answered = 0
            time.sleep(0.2)
    time.sleep(1.0)  # the other server processes finish starting


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def body(statuses: list[dict[str, Any]]) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550100300", "phone_number_id": "100200300"},
        "statuses": statuses,
    }
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "900800700", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(payload).encode()


def status(i: int, state: str, ts: int) -> dict[str, Any]:
    return {
        "id": f"wamid.bench.{i}",
        "status": state,
        "timestamp": str(ts),
        "recipient_id": f"1555{i:07d}",
        "conversation": {"id": "c1", "origin": {"type": "marketing"}},
        "pricing": {"billable": True, "pricing_model": "PMP", "category": "marketing"},
    }


def seed(db_url: str, recipients: int) -> str:
    """A config, template, agent and a sent broadcast with `recipients` accepted messages."""
    from broadcasts.db import make_session_factory, transaction
    from tests.factories import make_broadcast

    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    with transaction(sessions) as s:
        broadcast_id = make_broadcast(s).id
    now = utcnow()
    rows = [
        {
            "broadcast_id": broadcast_id,
            "phone": f"+1555{i:07d}",
            "params": {"1": "Ana"},
            "status": "sent",
            "wamid": f"wamid.bench.{i}",
            "wa_id": f"1555{i:07d}",
            "attempts": 1,
            "sent_at": now,
            "created_at": now,
        }
        for i in range(recipients)
    ]
    with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(insert(Recipient), rows[start : start + 5000])
    with transaction(sessions) as s:
        repair_counters(s, broadcast_id)
        s.execute(update(Broadcast).where(Broadcast.id == broadcast_id).values(status="sending"))
    engine.dispose()
    return broadcast_id


def fire(url: str, bodies: list[bytes]) -> Load:
    """Post every body, signed beforehand, over CONCURRENCY keep-alive connections."""
    requests = [
        build_post(url, b, {"X-Hub-Signature-256": "sha256=" + sign(b, SECRET), **JSON})
        for b in bodies
    ]
    results = asyncio.run(post_all(url, requests, CONCURRENCY))
    return Load(len(bodies), 0, results.ok, results.seconds, results.latencies)


_engines: dict[str, Any] = {}


def count(db_url: str, processed: bool | None = None) -> int:
    engine = _engines.get(db_url) or _engines.setdefault(db_url, make_engine(db_url))
    query = select(func.count()).select_from(InboxEvent)
    if processed is True:
        query = query.where(InboxEvent.processed_at.is_not(None))
    with engine.connect() as conn:
        return int(conn.scalar(query) or 0)


def drain(env: dict[str, str], db_url: str, workers: int, target: int, events: int) -> float:
    """Start `workers` burst workers; status events processed per second once they are running
    (measured from the first processed body, so process start-up is left out)."""
    baseline = count(db_url, processed=True)
    per_body = events / max(target - baseline, 1)
    procs = [
        subprocess.Popen(  # noqa: S603
            [BIN, "worker", "--queue", "webhooks", "--burst", "--no-maintenance"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(workers)
    ]
    first: tuple[float, int] | None = None
    done = baseline
    while done < target and not all(p.poll() is not None for p in procs):
        done = count(db_url, processed=True)
        if first is None and done > baseline:
            first = (time.perf_counter(), done)
        time.sleep(0.02)
    ended = time.perf_counter()
    for p in procs:
        p.wait(timeout=120)
    done = count(db_url, processed=True)
    if done < target or first is None:
        raise SystemExit(f"workers stopped with {done - baseline}/{target - baseline} processed")
    return (target - first[1]) * per_body / max(ended - first[0], 1e-6)


def run_backend(name: str, db_url: str) -> dict[str, Any]:
    run_upgrade(db_url)
    singles, batches = SINGLE_POSTS, BATCH_POSTS * BATCH_SIZE
    broadcast_id = seed(db_url, singles + batches)
    Redis.from_url(REDIS_URL).flushdb()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": REDIS_URL,
        "WHATSAPP_APP_SECRET": SECRET,
        "PORT": str(port),
        "LOG_LEVEL": "warning",
    }
    web_args = ["--workers", str(WEB_WORKERS)] if WEB_WORKERS else []
    web = subprocess.Popen(  # noqa: S603
        [BIN, "web", "--host", "127.0.0.1", *web_args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    results: dict[str, Any] = {"backend": name}
    try:
        wait_until_up(web, base)
        url = base + "/webhooks/whatsapp"
        t0 = int(time.time())
        plans = [
            (
                "single",
                "delivered",
                1,
                [body([status(i, "delivered", t0)]) for i in range(singles)],
            ),
            ("single", "read", 2, [body([status(i, "read", t0 + 1)]) for i in range(singles)]),
            (
                "batched",
                "delivered",
                1,
                [
                    body(
                        [
                            status(singles + b * BATCH_SIZE + j, "delivered", t0)
                            for j in range(BATCH_SIZE)
                        ]
                    )
                    for b in range(BATCH_POSTS)
                ],
            ),
            (
                "batched",
                "read",
                2,
                [
                    body(
                        [
                            status(singles + b * BATCH_SIZE + j, "read", t0 + 1)
                            for j in range(BATCH_SIZE)
                        ]
                    )
                    for b in range(BATCH_POSTS)
                ],
            ),
        ]
        stored = 0
        for kind, state, workers, bodies in plans:
            warm = len(bodies) // 20  # warm-up posts (stored and processed too, not timed)
            fire(url, bodies[:warm])
            cpu_before = tree_cpu_seconds(web.pid)
            own_before = time.process_time()
            load = fire(url, bodies[warm:])
            server_cpu_ms = (tree_cpu_seconds(web.pid) - cpu_before) * 1000 / max(load.ok, 1)
            client_cpu_ms = (time.process_time() - own_before) * 1000 / max(load.ok, 1)
            per_body = 1 if kind == "single" else BATCH_SIZE
            stored += len(bodies)
            in_inbox = count(db_url)
            lost = stored - in_inbox
            rate = drain(env, db_url, workers, stored, len(bodies) * per_body)
            key = f"{kind}_{state}"
            results[key] = {
                "load": load,
                "server_cpu_ms": server_cpu_ms,
                "client_cpu_ms": client_cpu_ms,
                "per_body": per_body,
                "lost": lost,
                "drain_workers": workers,
                "drain_events_per_s": rate,
            }
        engine = make_engine(db_url)
        with engine.connect() as conn, conn.begin():
            from sqlalchemy.orm import Session

            with Session(bind=conn) as s:
                broadcast = s.get(Broadcast, broadcast_id)
                assert broadcast is not None
                results["counters_equal_recount"] = stored_counts(broadcast) == recount(
                    s, broadcast_id
                )
                results["read"] = broadcast.read_count
        engine.dispose()
        results["bodies_sent"] = stored
        results["web_peak_rss_mb"] = peak_rss_mb(web.pid)
        results["load_at_end"] = os.getloadavg()[0]
        results["bodies_stored"] = count(db_url)
    finally:
        web.terminate()
        web.wait(timeout=30)
        engine = _engines.pop(db_url, None)
        if engine is not None:
            engine.dispose()
    return results


def report(results: dict[str, Any]) -> None:
    processes = WEB_WORKERS or default_workers()
    print(
        f"\n--- {results['backend']} (web: {processes} uvicorn processes, "
        f"{CONCURRENCY} connections) ---"
    )
    print(
        f"(load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, shared with the "
        "load generator and anything else running)"
    )
    for key in ("single_delivered", "single_read", "batched_delivered", "batched_read"):
        r = results[key]
        load: Load = r["load"]
        posts = load.per_second
        events = posts * r["per_body"]
        goal = GOAL_SINGLE if r["per_body"] == 1 else GOAL_BATCHED_EVENTS
        measure = posts if r["per_body"] == 1 else events
        print(
            f"{key:18s} {load.ok:6d}/{load.posts} accepted  {posts:7.0f} POST/s  "
            f"{events:8.0f} events/s (goal ratio {measure / goal:4.2f})  "
            f"p50 {load.pct(0.5):5.1f} ms  p99 {load.pct(0.99):6.1f} ms "
            f"(÷100 ms: {load.pct(0.99) / GOAL_P99_MS:4.2f})  lost {r['lost']}  "
            f"drain {r['drain_events_per_s']:7.0f} events/s with {r['drain_workers']} worker(s)"
        )
        cpu = r["server_cpu_ms"]
        print(
            f"{'':18s} server CPU {cpu:5.2f} ms per POST → {1000 / cpu:6.0f} POST/s "
            f"({1000 / cpu * r['per_body']:7.0f} events/s) per dedicated core"
        )
    singles = [results["single_delivered"], results["single_read"]]
    loads: list[Load] = [r["load"] for r in singles]
    merged = Load(
        sum(x.posts for x in loads),
        0,
        sum(x.ok for x in loads),
        sum(x.seconds for x in loads),
        [t for x in loads for t in x.latencies],
    )
    lost = results["bodies_sent"] - results["bodies_stored"]
    cpu = {
        f"web ({processes} processes)": sum(r["server_cpu_ms"] for r in singles) / 2,
        "load generator": sum(r["client_cpu_ms"] for r in singles) / 2,
    }
    memory = {"each web process": results["web_peak_rss_mb"]}
    note = f"{lost} lost; load {results['load_at_end']:.1f}; generator on the same cores"
    what = "single-status webhook POSTs"
    backend = results["backend"]
    summary.record(
        summary.Row(
            what, backend, merged.per_second, GOAL_SINGLE, "POST/s", True, cpu, memory, note
        )
    )
    summary.record(
        summary.Row(
            what + ", p99", backend, merged.pct(0.99), GOAL_P99_MS, "ms", False, {}, {}, note
        )
    )
    print(
        f"bodies sent {results['bodies_sent']}, stored {results['bodies_stored']} "
        f"(lost {results['bodies_sent'] - results['bodies_stored']}); "
        f"counters equal recount: {results['counters_equal_recount']}; "
        f"read {results['read']}"
    )


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    pg_name = f"bench_webhooks_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        report(run_backend("SQLite", f"sqlite:///{tmp / 'bench.db'}"))
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        except Exception as exc:  # no PostgreSQL here: SQLite figures only
            print(f"PostgreSQL skipped: {exc}")
            return
        pg_url = (
            make_url(POSTGRES_ADMIN).set(database=pg_name).render_as_string(hide_password=False)
        )
        report(run_backend("PostgreSQL", pg_url))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
        admin.dispose()
        Redis.from_url(REDIS_URL).flushdb()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
