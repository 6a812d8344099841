"""What observability costs: counting on the hot path, masking logs, rendering /metrics.

Prints each cost next to the work it rides on, as ratios measured in this run.
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Callable

from redis import Redis

from bot.http.metrics import render
from bot.ops.logs import Masker, MaskingFilter, TextFormatter
from broadcasts.sending import Outcome
from jobs import keys
from jobs.runtime import Runtime
from jobs.settings import Settings
from jobs.telemetry import Meter, SendMeter

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


class _Limiter:
    waited_seconds = 0.0


def _per_call(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def _bench_counting(redis: Redis[bytes]) -> None:
    meter = Meter(redis, background=False)
    lane = SendMeter(meter, "bench-100200300", _Limiter())  # type: ignore[arg-type]
    group = [Outcome(i, "sent") for i in range(95)] + [
        Outcome(i, "failed", code=999999) for i in range(5)
    ]
    count = _per_call(lambda: meter.count("webhook_events", {"source": "bench"}), 100_000)
    record = _per_call(lambda: lane.record(group), 2_000)

    def record_and_flush() -> None:
        lane.record(group)
        meter.flush()

    flush = _per_call(record_and_flush, 500)
    ping = _per_call(redis.ping, 2_000)
    print(f"Meter.count: {count * 1e6:.2f} µs per call (memory only)")
    print(
        f"SendMeter.record, 100 outcomes: {record * 1e6:.1f} µs per group = "
        f"{record / 100 * 1e9:.0f} ns per message"
    )
    print(
        f"flush of a group's tally: {flush * 1e6:.0f} µs, {flush / ping:.1f}× one Redis PING "
        "(once a second, on a background thread)"
    )
    # A lane records a group about every 100 ms; at 1,000 messages/s each holds ~100 outcomes.
    print(f"share of a 100 ms recording interval spent counting: {record / 0.1:.5%}")


def _bench_logs() -> None:
    secrets = {"xoxb-1111-2222-abcdefSECRET", "kapso-key-9f8e7d6c", "meta-app-secret-0a1b2c"}
    masked = logging.Logger("bench.masked")
    plain = logging.Logger("bench.plain")
    for logger, masking in ((masked, True), (plain, False)):
        handler = logging.StreamHandler(io.StringIO())
        masker = Masker(secrets)
        if masking:
            handler.addFilter(MaskingFilter(masker))
            handler.setFormatter(TextFormatter(masker))
        else:
            handler.setFormatter(
                logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
            )
        logger.addHandler(handler)
    n = 20_000
    args = ("+447400123456", "b2c1-4f", 131026)  # a number, an id, a code
    plain_cost = _per_call(lambda: plain.info("sent to %s in %s: error %s", *args), n)
    masked_cost = _per_call(lambda: masked.info("sent to %s in %s: error %s", *args), n)
    print(
        f"a log line: {plain_cost * 1e6:.1f} µs plain, {masked_cost * 1e6:.1f} µs masked "
        f"({masked_cost / plain_cost:.2f}× plain)"
    )


def _bench_render(redis: Redis[bytes]) -> None:
    # An in-memory database without tables: the database part reports up=0 and costs nothing.
    runtime = Runtime(Settings(_env_file=None, redis_url=REDIS_URL, database_url="sqlite://"))
    ping = _per_call(redis.ping, 1_000)
    scrape = _per_call(lambda: render(runtime), 50)
    print(
        f"/metrics render (Redis part): {scrape * 1e3:.1f} ms = {scrape / ping:.0f}× a Redis PING"
    )


def main() -> None:
    redis: Redis[bytes] = Redis.from_url(REDIS_URL)
    _bench_counting(redis)
    _bench_logs()
    logging.disable(logging.WARNING)
    try:
        _bench_render(redis)
    finally:
        logging.disable(logging.NOTSET)
    for key in redis.scan_iter(f"{keys.TELEMETRY_PREFIX}*"):  # leave no benchmark counts behind
        if b"bench" in key:
            redis.delete(key)
        elif redis.type(key) == b"hash":  # type: ignore[no-untyped-call]
            fields = [f for f in redis.hkeys(key) if b"bench" in f or b"999999" in f]
            if fields:
                redis.hdel(key, *fields)


if __name__ == "__main__":
    main()
