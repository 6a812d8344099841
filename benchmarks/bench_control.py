"""Control while sending: pause, cancel, statuses, replies and the Slack card during a send.

A whole deployment in processes, on PostgreSQL and Redis: the sandbox (200 ms latency, 80/s,
10 % replies) posting signed webhooks to `broadcast-bot web`, N `broadcast-bot worker` processes
started exactly as the Procfile's `worker` (every queue, maintenance loop on), Slack pointed at the
fake Slack Web API, and a webhook agent here that notes when each reply arrives.

Broadcast A (6,000 recipients, batches of 500, no pause, card in Slack) is started, paused
mid-batch, resumed once the sandbox is quiet, and runs to completion. Broadcast B (a third the size)
is started afterwards and cancelled mid-batch. Printed, against the goals of issue 11:

1. messages the sandbox accepted later than the pause (A) and the cancel (B) returned — both
   committed by then (goal ≤ 1 s worth at the rate: 80);
2. status apply latency p50/p95 for statuses emitted during A's send: the sandbox's first POST of
   a delivered/read/failed status → the first poll (every 0.25 s) that shows it on the recipient
   row (goal p95 ≤ 2 s; `sent` is left out, the row shows it from the send's own response);
3. reply → agent latency p50/p95 for replies emitted during A's send (goal p95 ≤ 2 s);
4. `chat.update` calls on A's card per second during the send (goal 0.3–1.0), the most in any
   1-second window (goal ≤ 1), the longest gap, and edits identical to the previous one;
5. A's last accepted message → `finished_at` of `completed` (goal ≤ 1 s).

Something not seen within 60 s after the sends end counts as never
("never", infinitely late). Sizes and worker counts: BENCH_CONTROL_RECIPIENTS
(default 6000), BENCH_CONTROL_WORKERS (default "1,3"), or `python -m benchmarks.bench_control
--workers 3`. Redis: BENCH_REDIS_URL (default redis://127.0.0.1:6379/13, flushed).
"""

from __future__ import annotations

import argparse
import hmac
import itertools
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from redis import Redis
from rq import Worker
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from benchmarks.stack import OPERATOR, Stack, drop_postgres, fresh_postgres
from bot.slack import card_messages, job_handlers
from bot.slack.client import make_client
from broadcasts.db import make_engine, transaction
from broadcasts.lifecycle import READ_ONLY
from broadcasts.models import Broadcast, Recipient
from jobs import broadcast_control
from jobs.agents import SIGNATURE_HEADER, agent_signature
from jobs.runtime import Runtime, install
from jobs.settings import Settings
from tests.fakes.slack_api import BOT_TOKEN, SIGNING_SECRET, FakeSlack

log = logging.getLogger(__name__)

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
DATABASE = "bb_bench_control"
RATE = 80
LATENCY_MS = 200.0
REPLY_RATE = 0.1
BATCH_SIZE = 500
CHANNEL = "C0BENCH"
AGENT_SECRET_ENV = "BENCH_AGENT_SECRET"  # noqa: S105 (the name of a variable)
AGENT_SECRET = "bench-agent-secret"  # noqa: S105 (signs local benchmark traffic only)
POLL_SECONDS = 0.25
QUIET_SECONDS = 3.0  # no new accepted message for this long: the sender has stopped
DRAIN_SECONDS = 60.0  # after the send, how long late statuses and replies may still arrive
GOAL_AFTER = RATE * 1.0  # one second's worth of messages at the rate
GOAL_P95 = 2.0
GOAL_CARD = (0.3, 1.0)
GOAL_COMPLETE = 1.0
STATUS_FIELDS = {"delivered": ("delivered",), "read": ("delivered", "read"), "failed": ("failed",)}


# -- what the benchmark watches ----------------------------------------------------------------


class RecordingSlack(FakeSlack):
    """The fake Slack Web API, noting when each `chat.update` arrives and what it carried."""

    def __init__(self) -> None:
        super().__init__()
        self.updates: list[tuple[float, str, str, str]] = []  # at, channel, ts, content

    def _api(self, h: BaseHTTPRequestHandler, method: str, params: dict[str, Any]) -> None:
        if method == "chat.update":
            content = json.dumps([params.get("text"), params.get("blocks")], sort_keys=True)
            self.updates.append(
                (time.time(), str(params.get("channel")), str(params.get("ts")), content)
            )
        super()._api(h, method, params)


class AgentRecorder:
    """A webhook agent on 127.0.0.1: checks each POST's signature and notes when each reply
    (by its WhatsApp message id) first arrived and whether it came with broadcast context."""

    def __init__(self, secret: str) -> None:
        self.received: dict[str, float] = {}
        self.with_context: set[str] = set()
        self.bad_signatures = 0
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.time()
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                expected = agent_signature(raw, secret)
                ok = hmac.compare_digest(self.headers.get(SIGNATURE_HEADER, ""), expected)
                if ok:
                    recorder.note(json.loads(raw), at)
                else:
                    with recorder._lock:
                        recorder.bad_signatures += 1
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/agent"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def note(self, payload: dict[str, Any], at: float) -> None:
        message_id = str(payload["message"]["id"])
        with self._lock:
            self.received.setdefault(message_id, at)
            if payload.get("broadcast_context"):
                self.with_context.add(message_id)

    def start(self) -> AgentRecorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class RowWatcher(threading.Thread):
    """Polls a broadcast's recipient rows and status; notes when each first shows a change."""

    def __init__(self, database_url: str, broadcast_id: str) -> None:
        super().__init__(name="row-watcher", daemon=True)
        self.engine = make_engine(database_url)
        self.broadcast_id = broadcast_id
        self.seen: dict[tuple[str, str], float] = {}  # (wamid, delivered|read|failed) -> at
        self.status_at: dict[str, float] = {}
        self.errors = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            started = time.time()
            try:
                self.poll(started)
            except Exception:  # a flaky poll must not end the watch; it is counted and shown
                self.errors += 1
                log.exception("polling the recipient rows failed")
            self._halt.wait(max(0.0, POLL_SECONDS - (time.time() - started)))

    def poll(self, at: float) -> None:
        query = select(
            Recipient.wamid,
            Recipient.delivered_at.is_not(None),
            Recipient.read_at.is_not(None),
            Recipient.failed_at.is_not(None),
        ).where(Recipient.broadcast_id == self.broadcast_id, Recipient.wamid.is_not(None))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            status = conn.scalar(select(Broadcast.status).where(Broadcast.id == self.broadcast_id))
        for wamid, delivered, read, failed in rows:
            for name, shown in (("delivered", delivered), ("read", read), ("failed", failed)):
                if shown:
                    self.seen.setdefault((str(wamid), name), at)
        self.status_at.setdefault(str(status), at)

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(10)
        self.engine.dispose()


# -- analysis (pure) ---------------------------------------------------------------------------


Key = TypeVar("Key", str, tuple[str, str])


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank); inf when that rank falls on something never seen."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def sent_after(
    messages: Iterable[dict[str, Any]], broadcast_id: str, after: float, until: float = math.inf
) -> tuple[int, float]:
    """How many of a broadcast's messages the sandbox accepted in (after, until], and how long
    after `after` the last of them was accepted (0 when none)."""
    prefix = f"bb1:{broadcast_id}:"
    times = [
        float(m["time"])
        for m in messages
        if str(m.get("callback_data") or "").startswith(prefix) and after < m["time"] <= until
    ]
    return len(times), (max(times) - after if times else 0.0)


def status_latencies(
    webhooks: Iterable[dict[str, Any]],
    wamids: set[str],
    seen: dict[tuple[str, str], float],
    window: tuple[float, float],
) -> list[float]:
    """For each (wamid, field) whose first implying status was posted inside `window`: when the
    row first showed it minus that first post (inf if never shown). `read` implies delivered."""
    posts = [
        ((str(event["id"]), name), float(event["emitted_at"]))
        for event in webhooks
        if event["kind"] == "status" and event["id"] in wamids
        for name in STATUS_FIELDS.get(str(event["status"]), ())
    ]
    return latencies(posts, seen, window)


def reply_latencies(
    webhooks: Iterable[dict[str, Any]], received: dict[str, float], window: tuple[float, float]
) -> list[float]:
    """Reply posted inside `window` → the agent receiving it (inf if it never did)."""
    posts = [(str(e["id"]), float(e["emitted_at"])) for e in webhooks if e["kind"] == "message"]
    return latencies(posts, received, window)


def latencies(
    posts: list[tuple[Key, float]], seen: dict[Key, float], window: tuple[float, float]
) -> list[float]:
    """Per key whose first post falls inside `window`: first seen minus first posted (a
    duplicate post does not restart the clock); inf when never seen."""
    first: dict[Key, float] = {}
    for key, at in posts:
        first[key] = min(first.get(key, math.inf), at)
    start, end = window
    return [
        max(0.0, seen[key] - at) if key in seen else math.inf
        for key, at in first.items()
        if start <= at <= end
    ]


@dataclass(frozen=True)
class CardFigures:
    updates: int
    per_second: float
    most_in_one_second: int
    longest_gap: float
    identical: int


def card_figures(
    updates: list[tuple[float, str, str, str]], channel: str, ts: str, window: tuple[float, float]
) -> CardFigures:
    """`chat.update` calls on one card inside `window`: rate, the most in any 1-second sliding
    window, the longest time without one (window edges included) and repeats of the same
    content as the edit before."""
    mine = sorted((at, content) for at, c, t, content in updates if c == channel and t == ts)
    start, end = window
    inside = [(at, content) for at, content in mine if start <= at <= end]
    times = [at for at, _ in inside]
    most, left = 0, 0
    for right, at in enumerate(times):
        while at - times[left] >= 1.0:
            left += 1
        most = max(most, right - left + 1)
    edges = [start, *times, end]
    gap = max((b - a for a, b in itertools.pairwise(edges)), default=end - start)
    identical = 0
    previous: str | None = None
    for at, content in mine:
        if start <= at <= end and content == previous:
            identical += 1
        previous = content
    span = max(end - start, 1e-9)
    return CardFigures(len(times), len(times) / span, most, gap, identical)


# -- one run -----------------------------------------------------------------------------------


@dataclass
class Result:
    workers: int
    recipients: int
    load_before: float = math.nan
    load_after: float = math.nan
    after_pause: int | None = None
    after_pause_last: float = 0.0
    paused_quiet: bool = True
    after_cancel: int | None = None
    after_cancel_last: float = 0.0
    cancelled_quiet: bool = True
    status: list[float] = field(default_factory=list)
    replies: list[float] = field(default_factory=list)
    replies_received: int = 0
    replies_with_context: int = 0
    card: CardFigures | None = None
    to_completed: float | None = None
    final_status: str = "?"
    send_seconds: float = math.nan
    accepted: int = 0
    throttled: int = 0
    watcher_errors: int = 0
    bad_signatures: int = 0
    control_failures: list[str] = field(default_factory=list)
    card_at_end: str = ""
    started_note: str = ""
    error: str | None = None


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


def act(result: Result, what: str, call: Callable[[], object]) -> float:
    """Press the button: call the control service; a database error (e.g. a deadlock with the
    sender) is what a user would see, so it is recorded and the press repeated, as a user would.
    Returns when the successful call returned: its change is committed by then."""
    for attempt in range(1, 4):
        try:
            call()
            return time.time()
        except OperationalError as exc:
            first_line = str(exc.orig or exc).splitlines()[0]
            result.control_failures.append(f"{what}: {type(exc.orig).__name__} ({first_line})")
            log.warning("%s failed (attempt %d): %s", what, attempt, first_line)
            time.sleep(0.5)
    raise RuntimeError(f"{what} failed three times")


def accepted_count(stack: Stack) -> int:
    return int(stack.sandbox_stats()["accepted"])


def wait_quiet(stack: Stack, limit: float = 30.0) -> bool:
    """Wait until the sandbox accepts nothing new for QUIET_SECONDS; False if it never did."""
    deadline = time.monotonic() + limit
    last, since = accepted_count(stack), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = accepted_count(stack)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= QUIET_SECONDS:
            return True
    return False


def epoch(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def run(workers: int, recipients: int) -> Result:
    result = Result(workers=workers, recipients=recipients, load_before=os.getloadavg()[0])
    redis = Redis.from_url(REDIS_URL)
    redis.flushdb()
    database_url = fresh_postgres(DATABASE)
    slack = RecordingSlack()
    slack.start()
    agent = AgentRecorder(AGENT_SECRET).start()
    settings = Settings(
        database_url=database_url,
        redis_url=REDIS_URL,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
    )
    stack = Stack(
        database_url,
        REDIS_URL,
        throughput=RATE,
        latency_ms=LATENCY_MS,
        webhooks=True,
        reply_rate=REPLY_RATE,
        env_extra={
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.api_url,
            AGENT_SECRET_ENV: AGENT_SECRET,
        },
    )
    runtime: Runtime | None = None
    watcher: RowWatcher | None = None
    try:
        stack.start_sandbox()
        stack.start_web()
        # The rate is explicit: a configuration whose level is not read yet defaults lower.
        send_id = stack.prepare(
            recipients,
            batch_size=BATCH_SIZE,
            pause=0.0,
            rate=RATE,
            agent_url=agent.url,
            agent_secret_env=AGENT_SECRET_ENV,
        )
        cancel_id = stack.prepare(recipients // 3, batch_size=BATCH_SIZE, pause=0.0, rate=RATE)
        runtime = Runtime(settings)
        job_handlers.register()  # as `broadcast-bot` does: control actions queue Slack events
        install(runtime)
        with transaction(runtime.sessions) as session:
            broadcast = session.get(Broadcast, send_id)
            assert broadcast is not None
            card_ts = card_messages.post_card(make_client(settings), session, broadcast, CHANNEL)
        for i in range(workers):
            stack.start_worker(f"worker{i}")  # no --queue: every queue, as the Procfile runs it
        wait_until(lambda: Worker.count(connection=redis) >= workers, 60, "the workers", 0.2)
        watcher = RowWatcher(database_url, send_id)
        watcher.start()

        rt = runtime
        started = time.time()
        act(result, "start A", lambda: broadcast_control.start(rt, send_id, by=OPERATOR))
        wait_until(lambda: accepted_count(stack) >= int(recipients * 0.29), 120, "the pause point")
        paused = act(result, "pause A", lambda: broadcast_control.pause(rt, send_id, by=OPERATOR))
        result.paused_quiet = wait_quiet(stack)
        resumed = act(
            result, "resume A", lambda: broadcast_control.resume(rt, send_id, by=OPERATOR)
        )
        wait_until(
            lambda: any(s in watcher.status_at for s in READ_ONLY),
            recipients / RATE * 3 + 60,
            "broadcast A to finish",
            0.2,
        )

        before_cancel = accepted_count(stack)
        act(result, "start B", lambda: broadcast_control.start(rt, cancel_id, by=OPERATOR))
        wait_until(
            lambda: accepted_count(stack) >= before_cancel + recipients // 8,
            120,
            "the cancel point",
        )
        cancelled = act(
            result, "cancel B", lambda: broadcast_control.cancel(rt, cancel_id, by=OPERATOR)
        )
        result.cancelled_quiet = wait_quiet(stack)

        messages = stack.sandbox_messages()
        mine = [m for m in messages if str(m.get("callback_data")).startswith(f"bb1:{send_id}:")]
        wamids = {str(m["wamid"]) for m in mine}
        last_send = max(float(m["time"]) for m in mine)
        window = (started, last_send)

        def drained() -> bool:
            hooks = stack.sandbox_webhooks()
            late = status_latencies(hooks, wamids, dict(watcher.seen), window)
            return math.inf not in late and math.inf not in reply_latencies(
                hooks, dict(agent.received), window
            )

        # Late statuses and replies still count (as late); give them a bounded time to land.
        deadline = time.monotonic() + DRAIN_SECONDS
        while not drained() and time.monotonic() < deadline:
            time.sleep(2.0)

        hooks = stack.sandbox_webhooks()
        result.after_pause, result.after_pause_last = sent_after(messages, send_id, paused, resumed)
        result.after_cancel, result.after_cancel_last = sent_after(messages, cancel_id, cancelled)
        result.status = status_latencies(hooks, wamids, dict(watcher.seen), window)
        received = dict(agent.received)
        result.replies = reply_latencies(hooks, received, window)
        result.replies_received = len(received)
        result.replies_with_context = len(agent.with_context)
        result.card = card_figures(list(slack.updates), CHANNEL, card_ts, window)
        result.card_at_end = slack.message(CHANNEL, card_ts).text
        notes = [m.text for m in slack.messages_in(CHANNEL, card_ts) if "Started" in m.text]
        result.started_note = notes[0] if notes else "(none)"
        with transaction(runtime.sessions) as session:
            row = session.get(Broadcast, send_id)
            assert row is not None
            result.final_status = str(row.status)
            if row.status == "completed" and row.finished_at is not None:
                result.to_completed = epoch(row.finished_at) - last_send
        result.send_seconds = last_send - started
        result.accepted = len(mine)
        stats = stack.sandbox_stats()
        result.throttled = int(stats["throughput_rejections"])
        result.watcher_errors = watcher.errors
        result.bad_signatures = agent.bad_signatures
    except Exception as exc:
        log.exception("the control benchmark with %d worker(s) failed", workers)
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        if watcher is not None:
            watcher.stop()
        stack.shutdown()
        slack.stop()
        agent.stop()
        if runtime is not None:
            runtime.close()
        redis.flushdb()
        redis.close()
        drop_postgres(DATABASE)
        result.load_after = os.getloadavg()[0]
    return result


# -- report ------------------------------------------------------------------------------------


def seconds(value: float) -> str:
    if math.isnan(value):
        return "–"
    return "never" if math.isinf(value) else f"{value:.2f}"


def ratio(value: float | None, goal: float) -> str:
    if value is None or math.isnan(value):
        return "–"
    return "∞" if math.isinf(value) else f"{value / goal:.2f}"


def unseen(values: list[float]) -> int:
    return sum(1 for v in values if math.isinf(v))


def rows(r: Result) -> list[tuple[str, str, str, str]]:
    """(metric, goal, measured, measured ÷ goal) for one run."""
    if r.error:
        return [(metric, goal, "(failed)", "–") for metric, goal, _, _ in rows(Result(0, 0))]
    pause_note = "" if r.paused_quiet else " (still sending 30 s later)"
    cancel_note = "" if r.cancelled_quiet else " (still sending 30 s later)"
    sp50, sp95 = percentile(r.status, 0.5), percentile(r.status, 0.95)
    rp50, rp95 = percentile(r.replies, 0.5), percentile(r.replies, 0.95)
    out = [
        (
            "sent after pause",
            f"≤ {GOAL_AFTER:.0f}",
            f"{r.after_pause} (last +{r.after_pause_last:.1f} s){pause_note}",
            ratio(r.after_pause, GOAL_AFTER),
        ),
        (
            "sent after cancel",
            f"≤ {GOAL_AFTER:.0f}",
            f"{r.after_cancel} (last +{r.after_cancel_last:.1f} s){cancel_note}",
            ratio(r.after_cancel, GOAL_AFTER),
        ),
        (
            "status apply p50 / p95 s",
            f"p95 ≤ {GOAL_P95:.0f}",
            f"{seconds(sp50)} / {seconds(sp95)} (n {len(r.status)}, never {unseen(r.status)})",
            ratio(sp95, GOAL_P95),
        ),
        (
            "reply → agent p50 / p95 s",
            f"p95 ≤ {GOAL_P95:.0f}",
            f"{seconds(rp50)} / {seconds(rp95)} (n {len(r.replies)}, never {unseen(r.replies)})",
            ratio(rp95, GOAL_P95),
        ),
    ]
    card = r.card or CardFigures(0, math.nan, 0, math.nan, 0)
    out += [
        (
            "card updates / s",
            f"{GOAL_CARD[0]}–{GOAL_CARD[1]}",
            f"{card.per_second:.2f} ({card.updates}; longest gap {card.longest_gap:.1f} s; "
            f"{card.identical} identical)",
            ratio(card.per_second, GOAL_CARD[1]),
        ),
        (
            "card updates in one second",
            "≤ 1",
            str(card.most_in_one_second),
            ratio(card.most_in_one_second, 1.0),
        ),
    ]
    out.append(
        (
            "last due send → completed s",
            f"≤ {GOAL_COMPLETE:.0f}",
            seconds(r.to_completed) if r.to_completed is not None else f"({r.final_status})",
            ratio(r.to_completed, GOAL_COMPLETE),
        )
    )
    return out


def describe(r: Result) -> str:
    if r.error:
        failures = "; ".join(r.control_failures) or "none"
        return f"{r.workers} worker(s): FAILED — {r.error} (control calls that failed: {failures})"
    return (
        f"{r.workers} worker(s): A {r.accepted}/{r.recipients} accepted in {r.send_seconds:.1f} s, "
        f"ended {r.final_status}; {r.throttled} × 130429; agent got {r.replies_received} replies, "
        f"{r.replies_with_context} with broadcast context; bad agent signatures "
        f"{r.bad_signatures}; watcher errors {r.watcher_errors}; control calls that failed "
        f"and were repeated: {'; '.join(r.control_failures) or 'none'}; "
        f"load average {r.load_before:.1f} → {r.load_after:.1f} on {os.cpu_count()} CPUs\n"
        f"  card when the run ended: {r.card_at_end}\n  start note in its thread: {r.started_note}"
    )


def table(results: list[Result]) -> str:
    per_run = [rows(r) for r in results]
    headers = ["metric", "goal"]
    for r in results:
        headers += [f"{r.workers} worker{'s' if r.workers > 1 else ''}", "÷ goal"]
    lines: list[list[str]] = []
    for i, (metric, goal, _, _) in enumerate(per_run[0]):
        line = [metric, goal]
        for run_rows in per_run:
            _, _, measured, divided = run_rows[i] if i < len(run_rows) else ("", "", "–", "–")
            line += [measured, divided]
        lines.append(line)
    widths = [max(len(h), *(len(line[c]) for line in lines)) for c, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*headers), *(fmt.format(*line) for line in lines)])


def main(worker_counts: list[int] | None = None, recipients: int | None = None) -> None:
    counts = worker_counts or [
        int(w) for w in os.environ.get("BENCH_CONTROL_WORKERS", "1,3").split(",") if w.strip()
    ]
    size = recipients or int(os.environ.get("BENCH_CONTROL_RECIPIENTS", "6000"))
    print(
        f"sandbox latency {LATENCY_MS:.0f} ms, {RATE}/s, {REPLY_RATE:.0%} replies; {size:,} "
        f"recipients in batches of {BATCH_SIZE}, no pause; PostgreSQL; Redis {REDIS_URL}",
        flush=True,
    )
    results = []
    for workers in counts:
        result = run(workers, size)
        print(describe(result), flush=True)
        results.append(result)
    print()
    print(table(results))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, action="append", help="repeat: 1, 3 …")
    parser.add_argument("--recipients", type=int)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    main(args.workers, args.recipients)
