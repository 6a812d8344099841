"""Counters shared through Redis: several processes add up, a dead Redis never hurts the caller."""

from __future__ import annotations

import socket

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from broadcasts.sending import Outcome
from jobs.limiter import RateLimiter
from jobs.telemetry import Meter, SendMeter, read_counters, send_rates


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_counts_from_several_processes_add_up(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    web, worker = Meter(redis, background=False), Meter(redis, background=False)
    web.count("webhook_events", {"source": "meta", "result": "accepted", "status": "200"})
    web.count("webhook_events", {"source": "meta", "result": "accepted", "status": "200"})
    worker.count("webhook_events", {"source": "meta", "result": "accepted", "status": "200"}, 3)
    worker.count("slack_api_errors", {"method": "chat.update", "error": "ratelimited"})
    worker.count("limiter_wait_seconds", {"phone_number_id": "100"}, 0.25)
    worker.count("limiter_wait_seconds", {"phone_number_id": "100"}, 0.5)
    assert web.flush() and worker.flush()
    counters = read_counters(redis)
    assert counters["webhook_events"] == [
        ({"result": "accepted", "source": "meta", "status": "200"}, 5.0)
    ]
    assert counters["slack_api_errors"] == [({"error": "ratelimited", "method": "chat.update"}, 1)]
    assert counters["limiter_wait_seconds"] == [({"phone_number_id": "100"}, 0.75)]
    assert counters["messages_sent"] == []


def test_send_rate_is_the_average_of_the_last_complete_seconds(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    now = int(redis.time()[0])
    meter = Meter(redis, background=False)
    for second in range(now - 6, now - 1):  # the 5 seconds ending 2 s ago
        meter.sent("100200300", 40, second=second)
    meter.sent("100200300", 999, second=now - 20)  # too old to count
    meter.sent("555", 10, second=now - 3)
    assert meter.flush()
    assert send_rates(redis) == {"100200300": 40.0, "555": 2.0}
    assert read_counters(redis)["messages_sent"] == [
        ({"phone_number_id": "100200300"}, 1199.0),
        ({"phone_number_id": "555"}, 10.0),
    ]


def test_a_dead_redis_never_raises_and_the_tally_waits_for_the_next_flush(redis_url: str) -> None:
    dead = Redis(host="127.0.0.1", port=_closed_port(), socket_connect_timeout=1)
    meter = Meter(dead, background=False)
    meter.count("messages_failed", {"code": "131026"}, 2)
    meter.sent("100", 5)
    assert meter.flush() is False
    meter._redis = Redis.from_url(redis_url)  # Redis is back
    assert meter.flush() is True
    counters = read_counters(Redis.from_url(redis_url))
    assert counters["messages_failed"] == [({"code": "131026"}, 2.0)]
    assert counters["messages_sent"] == [({"phone_number_id": "100"}, 5.0)]


def test_a_lane_group_counts_sent_failed_retried_throttled_and_limiter_waits(
    redis_url: str,
) -> None:
    redis = Redis.from_url(redis_url)
    meter = Meter(redis, background=False)
    limiter = RateLimiter(AsyncRedis.from_url(redis_url))
    lane = SendMeter(meter, "100200300", limiter)
    limiter.waited_seconds = 1.5
    lane.record(
        [
            Outcome(1, "sent"),
            Outcome(2, "sent"),
            Outcome(3, "failed", code=131026),
            Outcome(4, "retry", code=130429),
            Outcome(5, "retry", code=None),  # a bare HTTP 429
            Outcome(6, "retry", code=131000),
            Outcome(7, "release"),
        ]
    )
    limiter.waited_seconds = 2.0
    lane.record([Outcome(8, "failed", code=131026)])
    assert meter.flush()
    c = read_counters(redis)
    assert c["messages_sent"] == [({"phone_number_id": "100200300"}, 2.0)]
    assert c["messages_failed"] == [({"code": "131026"}, 2.0)]
    assert c["messages_retried"] == [
        ({"code": "130429"}, 1.0),
        ({"code": "131000"}, 1.0),
        ({"code": "none"}, 1.0),
    ]
    assert c["messages_throttled"] == [({"phone_number_id": "100200300"}, 2.0)]
    assert c["limiter_wait_seconds"] == [({"phone_number_id": "100200300"}, 2.0)]
