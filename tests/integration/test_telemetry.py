"""Counters shared through Redis: several processes add up, a dead Redis never hurts the caller.

Other test runs may share this Redis database, so every test counts under labels of its own.
"""

from __future__ import annotations

import socket
import uuid

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from slack_sdk.errors import SlackApiError

from bot.slack.metered_client import MeteredWebClient
from broadcasts.configs import get_config
from broadcasts.db import transaction
from broadcasts.enums import BroadcastStatus
from broadcasts.sending import Outcome, OutcomeKind
from jobs import broadcast_control
from jobs.limiter import RateLimiter
from jobs.telemetry import Meter, SendMeter, meter_for, read_counters, send_rates
from kapso.sandbox.config import SandboxConfig
from tests.engine_support import drain, new_broadcast, sending_env
from tests.factories import OPERATOR
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack


def mine(
    rows: list[tuple[dict[str, str], float]], **labels: str
) -> list[tuple[dict[str, str], float]]:
    return [row for row in rows if labels.items() <= row[0].items()]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_counts_from_several_processes_add_up(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    web, worker = Meter(redis, background=False), Meter(redis, background=False)
    accepted = {"source": "tm-several", "result": "accepted", "status": "200"}
    web.count("webhook_events", accepted)
    web.count("webhook_events", accepted)
    worker.count("webhook_events", accepted, 3)
    worker.count("slack_api_errors", {"method": "tm.several", "error": "ratelimited"})
    worker.count("limiter_wait_seconds", {"phone_number_id": "tm-several"}, 0.25)
    worker.count("limiter_wait_seconds", {"phone_number_id": "tm-several"}, 0.5)
    assert web.flush() and worker.flush()
    counters = read_counters(redis)
    assert mine(counters["webhook_events"], source="tm-several") == [(accepted, 5.0)]
    assert mine(counters["slack_api_errors"], method="tm.several") == [
        ({"error": "ratelimited", "method": "tm.several"}, 1)
    ]
    assert mine(counters["limiter_wait_seconds"], phone_number_id="tm-several") == [
        ({"phone_number_id": "tm-several"}, 0.75)
    ]


def test_send_rate_is_the_average_of_the_last_complete_seconds(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    now = int(redis.time()[0])
    meter = Meter(redis, background=False)
    for second in range(now - 6, now - 1):  # the 5 seconds ending 2 s ago
        meter.sent("tm-rate-1", 40, second=second)
    meter.sent("tm-rate-1", 999, second=now - 20)  # too old to count
    meter.sent("tm-rate-2", 10, second=now - 3)
    assert meter.flush()
    rates = send_rates(redis)
    assert (rates["tm-rate-1"], rates["tm-rate-2"]) == (40.0, 2.0)
    sent = read_counters(redis)["messages_sent"]
    assert mine(sent, phone_number_id="tm-rate-1") == [({"phone_number_id": "tm-rate-1"}, 1199.0)]
    assert mine(sent, phone_number_id="tm-rate-2") == [({"phone_number_id": "tm-rate-2"}, 10.0)]


def test_a_dead_redis_never_raises_and_the_tally_waits_for_the_next_flush(redis_url: str) -> None:
    dead = Redis(host="127.0.0.1", port=_closed_port(), socket_connect_timeout=1)
    meter = Meter(dead, background=False)
    meter.count("messages_failed", {"code": "tm-dead"}, 2)
    meter.sent("tm-dead", 5)
    assert meter.flush() is False
    meter._redis = Redis.from_url(redis_url)  # Redis is back
    assert meter.flush() is True
    counters = read_counters(Redis.from_url(redis_url))
    assert mine(counters["messages_failed"], code="tm-dead") == [({"code": "tm-dead"}, 2.0)]
    assert mine(counters["messages_sent"], phone_number_id="tm-dead") == [
        ({"phone_number_id": "tm-dead"}, 5.0)
    ]


def test_a_lane_group_counts_sent_failed_retried_throttled_and_limiter_waits(
    redis_url: str,
) -> None:
    redis = Redis.from_url(redis_url)
    meter = Meter(redis, background=False)
    limiter = RateLimiter(AsyncRedis.from_url(redis_url))
    lane = SendMeter(meter, "tm-lane", limiter)
    limiter.waited_seconds = 1.5
    lane.record(
        [
            Outcome(1, OutcomeKind.SENT),
            Outcome(2, OutcomeKind.SENT),
            Outcome(3, OutcomeKind.FAILED, code=990026),
            Outcome(4, OutcomeKind.RETRY, code=130429, throttled=True),
            Outcome(5, OutcomeKind.RETRY, code=None, throttled=True),  # a bare HTTP 429
            Outcome(9, OutcomeKind.RETRY, code=None),  # no answer: retried, not a throttle
            Outcome(6, OutcomeKind.RETRY, code=990000),
            Outcome(7, "release"),
        ]
    )
    limiter.waited_seconds = 2.0
    lane.record([Outcome(8, OutcomeKind.FAILED, code=990026)])
    assert meter.flush()
    c = read_counters(redis)
    number = {"phone_number_id": "tm-lane"}
    assert mine(c["messages_sent"], **number) == [(number, 2.0)]
    assert mine(c["messages_failed"], code="990026") == [({"code": "990026"}, 2.0)]
    assert mine(c["messages_retried"], code="990000") == [({"code": "990000"}, 1.0)]
    assert {"130429", "none"} <= {labels["code"] for labels, _ in c["messages_retried"]}
    assert mine(c["messages_throttled"], **number) == [(number, 2.0)]
    assert mine(c["limiter_wait_seconds"], **number) == [(number, 2.0)]


def test_a_real_broadcast_shows_up_in_the_counters(db_url: str, redis_url: str) -> None:
    number = f"tm-{uuid.uuid4().hex[:8]}"
    sandbox = SandboxConfig(
        latency_ms=5, throughput=1000, pair_rate=False, reject_rules={"0131": 131026}
    )
    with sending_env(db_url, redis_url, sandbox) as env:
        with transaction(env.runtime.sessions) as session:
            get_config(session, "main").phone_number_id = number
        phones = [f"+1415555{i:04d}" for i in range(12)] + ["+14155550131"]
        bid = new_broadcast(env, phones)
        broadcast_control.start(env.runtime, bid, by=OPERATOR)
        assert drain(env, bid) == BroadcastStatus.COMPLETED
    assert meter_for(redis_url).flush()  # what the worker's background thread does each second
    counters = read_counters(Redis.from_url(redis_url))
    assert mine(counters["messages_sent"], phone_number_id=number) == [
        ({"phone_number_id": number}, 12.0)
    ]
    assert mine(counters["messages_failed"], code="131026")[0][1] >= 1


def test_slack_api_errors_are_counted_by_method_and_error(redis_url: str) -> None:
    meter = Meter(Redis.from_url(redis_url), background=False)
    with FakeSlack() as slack:
        client = MeteredWebClient(token=BOT_TOKEN, base_url=slack.api_url, meter=meter)
        slack.fail("chat.update", "message_not_found")
        with pytest.raises(SlackApiError):
            client.chat_update(channel="C1", ts="1.2", text="x")
        client.auth_test()
        bad = MeteredWebClient(token="xoxb-wrong", base_url=slack.api_url, meter=meter)
        with pytest.raises(SlackApiError):
            bad.api_call("tm.metered")
    assert meter.flush()
    errors = read_counters(Redis.from_url(redis_url))["slack_api_errors"]
    assert mine(errors, method="tm.metered") == [
        ({"error": "invalid_auth", "method": "tm.metered"}, 1.0)
    ]
    assert mine(errors, method="chat.update", error="message_not_found")[0][1] >= 1
