"""Sending benchmark: the real path (service → RQ worker → Redis limiter → client → sandbox →
database) on PostgreSQL, measuring the three sending rows of the throughput goals:

- one number at 200/s, 4,000 recipients, 2 workers: whole send ≤ 1.05 × ideal, no 130429;
- one number at 1,000/s, 20,000 recipients, 2 workers: ≥ 0.95 of the cap while sending, whole
  send ≤ 1.1 × ideal, 130429 answers ≤ 0.1 % of the messages, each of them retried;
- four numbers at 200/s each, sending at once, 2 workers: each number ≥ 0.95 of its cap.

"Workers" are two send-role processes (`broadcast-bot worker --role send`): exactly the process
that sends in each of two `broadcast-bot worker` supervisors (the Procfile's worker), without
their events and bulk roles, which have nothing to do here (the sandbox posts no webhooks) and
would only add idle processes on the benchmark's cores.

Whole send: from the start command to the last message the sandbox accepted; ideal: recipients
÷ cap. While sending: the rate between the 5th and 95th percentile of accepted messages (the
start-up and the last stragglers are the whole-send figure's business). Every run checks that
each recipient got exactly one message and none failed (so every 130429 was retried). CPU
seconds per 1,000 messages are given for the workers and for the sandbox, which shares the
cores. Sizes scale with BENCH_SEND_SCALE (default 1: the sizes above, a few minutes in all).
"""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq import Worker

from benchmarks import summary
from benchmarks.stack import OPERATOR, Stack, cpu_seconds, fresh_postgres, peak_rss_mb, running
from broadcasts.db import transaction
from broadcasts.lifecycle import READ_ONLY
from broadcasts.service import get_broadcast
from jobs import broadcast_control
from jobs.queues import SEND, queue
from jobs.runtime import install

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
LATENCY_MS = float(os.environ.get("BENCH_SEND_LATENCY_MS", "200"))
SCALE = float(os.environ.get("BENCH_SEND_SCALE", "1"))
WORKERS = 2
BACKEND = "PostgreSQL"


@dataclass(frozen=True)
class NumberResult:
    phone_number_id: str
    messages: int
    whole_seconds: float
    while_sending: float  # messages/s between the 5th and 95th percentile
    first_message_s: float
    exactly_once: bool
    failed: int


@dataclass(frozen=True)
class RunResult:
    cap: int
    numbers: list[NumberResult]
    throttled: int
    cpu_per_1000: dict[str, float]
    peak_rss_mb: dict[str, float]


def _steady_rate(times: list[float]) -> float:
    lo, hi = int(len(times) * 0.05), int(len(times) * 0.95) - 1
    span = times[hi] - times[lo]
    return (hi - lo) / span if span > 0 else float("nan")


def _wait_for_workers(redis_url: str) -> None:
    """Until both workers listen on the send queue: on a busy machine one starts seconds after
    the other, and the first would take every lane."""
    redis = Redis.from_url(redis_url)
    deadline = time.time() + 120
    while Worker.count(connection=redis, queue=queue(SEND, redis)) < WORKERS:
        if time.time() > deadline:
            raise RuntimeError("the workers did not start within 120 s")
        time.sleep(0.2)
    time.sleep(1.0)  # registered, then waiting on the queue a moment later


def run(cap: int, recipients: int, numbers: int = 1) -> RunResult:
    """Send `recipients` from each of `numbers` numbers at `cap`/s each, all started at once."""
    Redis.from_url(REDIS_URL).flushdb()
    stack = Stack(fresh_postgres("bb_bench_send"), REDIS_URL, throughput=cap, latency_ms=LATENCY_MS)
    with running(stack):
        stack.start_sandbox()
        pnids = [str(100200300 + i) for i in range(numbers)]
        broadcasts = {
            pnid: stack.prepare(recipients, config=f"bench{i}", phone_number_id=pnid)
            for i, pnid in enumerate(pnids)
        }
        procs = [stack.start_role(f"worker{i}", "send") for i in range(WORKERS)]
        sandbox = stack.processes["sandbox"]
        _wait_for_workers(stack.redis_url)
        cpu_before = {p.pid: cpu_seconds(p.pid) for p in [*procs, sandbox]}
        runtime = stack.runtime()
        install(runtime)
        started = time.time()
        for broadcast_id in broadcasts.values():
            broadcast_control.start(runtime, broadcast_id, by=OPERATOR)
        failed: dict[str, int] = {}
        for pnid, broadcast_id in broadcasts.items():
            while True:
                with transaction(runtime.sessions) as session:
                    broadcast = get_broadcast(session, broadcast_id)
                    status, failed[pnid] = broadcast.status, broadcast.failed_count
                if status in READ_ONLY:
                    break
                if time.time() - started > recipients / cap * 3 + 120:
                    raise RuntimeError(f"broadcast {broadcast_id} still {status}")
                time.sleep(0.5)
        total = recipients * numbers
        worker_cpu = sum(cpu_seconds(p.pid) - cpu_before[p.pid] for p in procs)
        sandbox_cpu = cpu_seconds(sandbox.pid) - cpu_before[sandbox.pid]
        rss = {
            "workers": max(peak_rss_mb(p.pid) for p in procs),
            "sandbox": peak_rss_mb(sandbox.pid),
        }
        runtime.close()
        messages = stack.sandbox_messages()
        stats = stack.sandbox_stats()
    by_number: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in messages:
        by_number[m["phone_number_id"]].append(m)
    results = []
    for pnid in pnids:
        mine = by_number[pnid]
        times = sorted(m["time"] for m in mine)
        per_phone = Counter(m["to"] for m in mine)
        results.append(
            NumberResult(
                phone_number_id=pnid,
                messages=len(mine),
                whole_seconds=times[-1] - started,
                while_sending=_steady_rate(times),
                first_message_s=times[0] - started,
                exactly_once=len(per_phone) == recipients and set(per_phone.values()) == {1},
                failed=failed[pnid],
            )
        )
    return RunResult(
        cap=cap,
        numbers=results,
        throttled=int(stats["throughput_rejections"]),
        cpu_per_1000={
            "workers": worker_cpu / (total / 1000),
            "sandbox": sandbox_cpu / (total / 1000),
        },
        peak_rss_mb=rss,
    )


def _print(label: str, r: RunResult) -> None:
    for n in r.numbers:
        print(
            f"{label:<22} {n.phone_number_id:>10} {n.messages:>8} {n.whole_seconds:>8.1f} "
            f"{n.messages / r.cap:>6.1f} {n.while_sending:>9.1f} {n.while_sending / r.cap:>6.1%} "
            f"{n.first_message_s:>6.2f} {'yes' if n.exactly_once and not n.failed else 'NO':>5}",
            flush=True,
        )
    cpu = ", ".join(f"{k} {v:.2f}" for k, v in r.cpu_per_1000.items())
    rss = ", ".join(f"{k} {v:.0f}" for k, v in r.peak_rss_mb.items())
    print(f"{'':<22} 130429 answers {r.throttled}; CPU s/1k: {cpu}; peak RSS MB: {rss}", flush=True)


def _retried(r: RunResult) -> str:
    ok = all(n.exactly_once and n.failed == 0 for n in r.numbers)
    return "every recipient exactly once, none failed" if ok else "NOT every recipient once"


def one_number(cap: int, recipients: int, whole_goal: float, rate_goal: float | None) -> None:
    r = run(cap, recipients)
    _print(f"{cap}/s × {recipients:,}", r)
    n = r.numbers[0]
    ideal = recipients / cap
    what = f"send at cap {cap}/s, {WORKERS} workers, {recipients:,}"
    note = f"130429 × {r.throttled}; {_retried(r)}; ideal {ideal:.0f} s"
    summary.record(
        summary.Row(
            f"{what}: whole send",
            BACKEND,
            n.whole_seconds,
            whole_goal * ideal,
            "s",
            False,
            r.cpu_per_1000,
            r.peak_rss_mb,
            note,
        )
    )
    if rate_goal is not None:
        summary.record(
            summary.Row(
                f"{what}: while sending",
                BACKEND,
                n.while_sending,
                rate_goal * cap,
                "msg/s",
                True,
                r.cpu_per_1000,
                r.peak_rss_mb,
                note,
            )
        )
        limit = 0.001 * n.messages
        summary.record(
            summary.Row(
                f"{what}: 130429 answers",
                BACKEND,
                r.throttled,
                limit,
                "",
                False,
                note=f"goal ≤ 0.1 % of messages; {_retried(r)}",
            )
        )


def many_numbers(numbers: int, cap: int, recipients: int) -> None:
    r = run(cap, recipients, numbers)
    _print(f"{numbers} × {cap}/s × {recipients:,}", r)
    slowest = min(r.numbers, key=lambda n: n.while_sending)
    rates = ", ".join(f"{n.while_sending:.0f}" for n in r.numbers)
    starts = ", ".join(f"{n.first_message_s:.1f}" for n in r.numbers)
    summary.record(
        summary.Row(
            f"{numbers} numbers × {cap}/s at once, {WORKERS} workers: slowest number",
            BACKEND,
            slowest.while_sending,
            0.95 * cap,
            "msg/s",
            True,
            r.cpu_per_1000,
            r.peak_rss_mb,
            f"per number {rates} msg/s; first message after {starts} s; whole send "
            f"{max(n.whole_seconds for n in r.numbers):.1f} s for an ideal {recipients / cap:.0f}"
            f" s; 130429 × {r.throttled}; {_retried(r)}",
        )
    )


def main() -> None:
    print(f"sandbox latency {LATENCY_MS:.0f} ms, PostgreSQL, batches of 500, no pause")
    print(
        f"{'run':<22} {'number':>10} {'messages':>8} {'whole s':>8} {'ideal':>6} "
        f"{'sending/s':>9} {'÷ cap':>6} {'1st s':>6} {'once':>5}"
    )
    one_number(200, int(4000 * SCALE), whole_goal=1.05, rate_goal=None)
    one_number(1000, int(20000 * SCALE), whole_goal=1.1, rate_goal=0.95)
    many_numbers(4, 200, int(2000 * SCALE))


if __name__ == "__main__":
    main()
