"""The pieces of a sending lane, each on its own: the stop switch, the recorder and the error
policy (no database, no worker; the error policy's limiter is never reached for these codes)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis as AsyncRedis

from broadcasts.sending import Claimed, Outcome, OutcomeKind
from jobs.lane_errors import UNKNOWN_PAUSE_AFTER, ErrorPolicy
from jobs.lane_record import Recorder
from jobs.lane_stop import Halt, StopReason
from jobs.limiter import RateLimiter
from kapso.errors import WhatsAppError

GUARD = 30.0  # seconds: only there so that a broken piece fails instead of hanging


def run(coro: object) -> object:
    return asyncio.run(asyncio.wait_for(coro, GUARD))  # type: ignore[arg-type]


def test_the_first_stop_reason_wins() -> None:
    halt = Halt()
    assert not halt.stopped
    halt.stop(StopReason.NOT_SENDING)
    halt.stop(StopReason.SHUTTING_DOWN)
    assert halt.reason is StopReason.NOT_SENDING


def test_a_stop_wakes_a_long_sleep() -> None:
    async def scenario() -> str:
        halt = Halt()
        sleeper = asyncio.create_task(halt.sleep(3600))
        await asyncio.sleep(0)
        halt.stop(StopReason.CIRCUIT_BREAKER)
        await sleeper
        return "woke"

    assert run(scenario()) == "woke"


def test_a_stopped_lane_does_not_sleep() -> None:
    async def scenario() -> None:
        halt = Halt()
        halt.stop(StopReason.LOCK_LOST)
        await halt.sleep(3600)

    run(scenario())


def sent(i: int) -> Outcome:
    return Outcome(i, OutcomeKind.SENT, wamid=f"wamid.{i}")


def test_the_recorder_writes_everything_put_before_a_flush_and_at_close() -> None:
    writes: list[list[int]] = []
    counted: list[int] = []

    async def write(group: list[Outcome]) -> None:
        writes.append([o.recipient_id for o in group])

    async def scenario() -> None:
        recorder = Recorder(write, lambda g: counted.extend(o.recipient_id for o in g), Halt(), "t")
        task = asyncio.create_task(recorder.run())
        recorder.put(sent(1))
        recorder.put_many([sent(2), sent(3)])
        await recorder.flush(task)
        assert sorted(i for group in writes for i in group) == [1, 2, 3]
        recorder.put(sent(4))
        recorder.close()
        await task

    run(scenario())
    assert sorted(i for group in writes for i in group) == [1, 2, 3, 4]
    assert sorted(counted) == [1, 2, 3, 4]


def test_a_refused_write_stops_new_sends_and_is_tried_again() -> None:
    attempts: list[int] = []

    async def write(group: list[Outcome]) -> None:
        attempts.append(len(group))
        if len(attempts) == 1:
            raise RuntimeError("database is down")

    halt = Halt()

    async def scenario() -> None:
        recorder = Recorder(write, lambda g: None, halt, "t")
        task = asyncio.create_task(recorder.run())
        recorder.put(sent(1))
        recorder.close()
        await task

    run(scenario())
    assert attempts == [1, 1]
    assert halt.reason is StopReason.RECORDING_FAILED


@pytest.fixture
def policy() -> ErrorPolicy:
    # Never connects: the codes below do not slow the number down.
    limiter = RateLimiter(AsyncRedis.from_url("redis://127.0.0.1:9"))
    return ErrorPolicy(limiter, "100200300", Halt())


def error(code: int) -> WhatsAppError:
    return WhatsAppError(code=code, title=f"error {code}", http_status=400)


RECIPIENT = Claimed(7, "+14155550100", {}, attempts=1)


def test_a_permanent_error_fails_the_recipient_only(policy: ErrorPolicy) -> None:
    outcome = run(policy.outcome(RECIPIENT, error(131026)))
    assert isinstance(outcome, Outcome)
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.code == 131026
    assert not policy.halt.stopped


def test_a_revoked_token_stops_the_broadcast_and_hands_the_recipient_back(
    policy: ErrorPolicy,
) -> None:
    outcome = run(policy.outcome(RECIPIENT, error(190)))
    assert isinstance(outcome, Outcome)
    assert outcome.kind is OutcomeKind.RELEASE
    assert not outcome.counts_as_attempt
    assert policy.halt.reason is StopReason.BROADCAST_ERROR
    assert policy.broadcast_error is not None and policy.broadcast_error.code == 190


def test_the_same_unknown_code_in_a_row_pauses_with_a_hint(policy: ErrorPolicy) -> None:
    kinds = [run(policy.outcome(RECIPIENT, error(987654))) for _ in range(UNKNOWN_PAUSE_AFTER)]
    assert [o.kind for o in kinds if isinstance(o, Outcome)][-1] is OutcomeKind.RELEASE
    assert policy.halt.reason is StopReason.BROADCAST_ERROR
    assert policy.broadcast_error is not None
    assert "does not know" in str(policy.broadcast_error)


def test_only_a_throttle_answer_is_counted_as_throttled() -> None:
    # 130429 and a bare HTTP 429 slow the number down (real Redis) and come back as a throttled
    # retry; no answer at all is retried but is not a throttle (telemetry counts only the first).
    from tests.conftest import REDIS_BASE_URL, SHARED_DB, redis_db_for

    async def scenario() -> list[Outcome]:
        redis = AsyncRedis.from_url(f"{REDIS_BASE_URL}/{redis_db_for(SHARED_DB)}")
        policy = ErrorPolicy(RateLimiter(redis), "lane-pieces-throttle", Halt())
        answers = [
            WhatsAppError(code=130429, title="rate limit hit", http_status=400),
            WhatsAppError(code=None, title="Too Many Requests", http_status=429),
            WhatsAppError(code=None, title="connection reset", http_status=None),
        ]
        try:
            return [await policy.outcome(RECIPIENT, exc) for exc in answers]
        finally:
            await redis.aclose()

    outcomes = run(scenario())
    assert isinstance(outcomes, list)
    assert [(o.kind, o.throttled) for o in outcomes] == [
        (OutcomeKind.RETRY, True),
        (OutcomeKind.RETRY, True),
        (OutcomeKind.RETRY, False),
    ]
    assert not outcomes[0].counts_as_attempt


def test_a_send_cancelled_while_its_slot_is_booked_does_not_strand_the_others() -> None:
    # A pause cancels waiting sends; the booking task (nobody awaits it) used to die on the
    # cancelled waiter and leave every other send waiting for good.
    from jobs.lane_dispatch import Rebooker
    from tests.conftest import REDIS_BASE_URL, SHARED_DB, redis_db_for

    async def scenario() -> float:
        redis = AsyncRedis.from_url(f"{REDIS_BASE_URL}/{redis_db_for(SHARED_DB)}")
        rebooker = Rebooker(RateLimiter(redis), "lane-pieces-rebook", 1000.0)
        try:
            first = asyncio.create_task(rebooker.slot())
            second = asyncio.create_task(rebooker.slot())
            await asyncio.sleep(0)  # both wait; the booking task is on its way to Redis
            first.cancel()
            return await asyncio.wait_for(second, 10)
        finally:
            await redis.aclose()

    assert isinstance(run(scenario()), float)


def test_a_booking_that_fails_hands_every_claimed_recipient_back_unsent() -> None:
    # Redis unreachable while slots are booked: the lane stops and what it claimed goes back as
    # never attempted, at once (it used to stay claimed until the stale-claim grace, then be
    # skipped as "not confirmed" though nothing was sent).
    from broadcasts.sending import BatchStats
    from jobs.lane_dispatch import Dispatcher
    from jobs.lane_plan import Plan
    from kapso.client import ApiTarget, WhatsAppClient
    from kapso.templates import TemplateSpec

    recorded: list[Outcome] = []

    async def write(group: list[Outcome]) -> None:
        recorded.extend(group)

    async def scenario() -> tuple[int, StopReason | None]:
        halt = Halt()
        target = ApiTarget("t", "sandbox", "http://127.0.0.1:9/v23.0", "100200300", "9", "k")
        plan = Plan(
            "b-unreachable",
            "t",
            "100200300",
            target,
            TemplateSpec("t", "en_US", "POSITIONAL"),
            batch_size=500,
            pause_seconds=0,
            rate=80.0,
            failure_threshold=0.5,
            lanes=1,
        )
        unreachable = RateLimiter(AsyncRedis.from_url("redis://127.0.0.1:9"))
        recorder = Recorder(write, lambda g: None, halt, "t")
        task = asyncio.create_task(recorder.run())
        claimed = [Claimed(i, f"+1415555{i:04d}", {}, attempts=0) for i in range(50)]
        async with WhatsAppClient() as client:
            dispatcher = Dispatcher(
                plan, client, unreachable, halt, recorder, ErrorPolicy(unreachable, "1", halt)
            )
            pacers = await dispatcher.dispatch(claimed, BatchStats())
        recorder.close()
        await task
        return len(pacers), halt.reason

    pacers, reason = run(scenario())  # type: ignore[misc]
    assert pacers == 0 and reason is StopReason.TASK_FAILED
    assert sorted(o.recipient_id for o in recorded) == list(range(50))
    assert {(o.kind, o.counts_as_attempt) for o in recorded} == {(OutcomeKind.RELEASE, False)}


def test_a_burst_of_throttle_answers_slows_the_number_down_once() -> None:
    # Hundreds of 130429 answers to one burst come back together: one Redis call, not one each
    # (which exhausted the lane's Redis connections and turned the answers into errors).
    from tests.conftest import REDIS_BASE_URL, SHARED_DB, redis_db_for

    async def scenario() -> list[Outcome]:
        redis = AsyncRedis.from_url(
            f"{REDIS_BASE_URL}/{redis_db_for(SHARED_DB)}", max_connections=2
        )
        policy = ErrorPolicy(RateLimiter(redis), "lane-pieces-burst", Halt())
        answer = WhatsAppError(code=130429, title="rate limit hit", http_status=400)
        try:
            return list(
                await asyncio.gather(*(policy.outcome(RECIPIENT, answer) for _ in range(300)))
            )
        finally:
            await redis.aclose()

    outcomes = run(scenario())
    assert isinstance(outcomes, list) and len(outcomes) == 300
    assert {(o.kind, o.throttled) for o in outcomes} == {(OutcomeKind.RETRY, True)}


def test_a_worker_process_sets_up_its_collector_and_switch_interval_for_steady_loops() -> None:
    # In a process of its own: both settings are process-wide.
    import subprocess
    import sys

    check = (
        "import gc, sys; from jobs import worker; worker.steady_loops(); "
        "assert gc.get_threshold() == worker.GC_THRESHOLDS, gc.get_threshold(); "
        "assert gc.get_freeze_count() > 10000, gc.get_freeze_count(); "
        "assert sys.getswitchinterval() == worker.SWITCH_INTERVAL_SECONDS"
    )
    subprocess.run([sys.executable, "-c", check], check=True, timeout=60)
