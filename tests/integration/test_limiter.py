"""The Redis limiter hands out evenly spaced slots to every caller, on the Redis clock."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import time
from urllib.parse import urlparse

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from jobs.limiter import RateLimiter, reserve_sync


def _slots(redis_url: str, n: int, rate: float) -> list[tuple[float, float, float]]:
    """(monotonic time before the call, wait granted, monotonic time after) for n bookings."""

    async def go() -> list[tuple[float, float, float]]:
        client = AsyncRedis.from_url(redis_url)
        limiter = RateLimiter(client, max_ahead_seconds=60)
        out = []
        for _ in range(n):
            before = time.monotonic()
            wait = (await limiter.reserve("n1", rate)).wait_seconds
            out.append((before, wait, time.monotonic()))
        await client.aclose()
        return out

    return asyncio.run(go())


def _span_bounds(calls: list[tuple[float, float, float]]) -> tuple[float, float]:
    """Bounds on the time from the earliest booked slot to the latest, however slow the calls:
    a slot lies between (before + wait) and (after + wait) of its call."""
    first = min(calls, key=lambda c: c[0] + c[1])
    last = max(calls, key=lambda c: c[0] + c[1])
    return (last[0] + last[1]) - (first[2] + first[1]), (last[2] + last[1]) - (first[0] + first[1])


def test_reservations_are_spaced_by_the_rate(redis_url: str) -> None:
    calls = _slots(redis_url, 50, 100.0)
    assert calls[0][1] == 0
    # Each slot one interval after the one before, however slow the calls were: slot i lies
    # between (before + wait) and (after + wait) of its call.
    for (before, wait, _), (_, next_wait, next_after) in itertools.pairwise(calls):
        assert next_after + next_wait >= before + wait + 0.01 - 0.002
    # Back to back, 50 slots at 100/s: the last is 0.49 s after the first, on the server's clock.
    low, high = _span_bounds(calls)
    assert low - 0.002 <= 0.49 <= high + 0.002


def test_a_number_is_shared_by_processes_and_separate_from_others(redis_url: str) -> None:
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.starmap(_slots, [(redis_url, 100, 50.0)] * 2)
    # 200 slots at 50/s: 3.98 s from the first to the last, whichever process booked them.
    low, high = _span_bounds(results[0] + results[1])
    assert low - 0.002 <= 3.98 <= high + 0.002
    redis = Redis.from_url(redis_url)
    assert reserve_sync(redis, "another-number", 50.0).wait_seconds == 0
    redis.close()


def test_too_far_ahead_is_refused_without_booking(redis_url: str) -> None:
    async def go() -> tuple[bool, bool]:
        client = AsyncRedis.from_url(redis_url)
        limiter = RateLimiter(client, max_ahead_seconds=0.05)
        grants = [(await limiter.reserve("n2", 10.0)).granted for _ in range(3)]
        await client.aclose()
        return grants[0], grants[2]

    first, third = asyncio.run(go())
    assert first and not third


def test_slow_down_pushes_the_number_back(redis_url: str) -> None:
    async def go() -> float:
        client = AsyncRedis.from_url(redis_url)
        limiter = RateLimiter(client, max_ahead_seconds=60)
        await limiter.slow_down("n3", 2.0)
        wait = (await limiter.reserve("n3", 100.0)).wait_seconds
        await client.aclose()
        return wait

    assert 1.9 <= asyncio.run(go()) <= 2.0


def test_throttling_slows_the_number_once_per_burst_of_rejections(redis_url: str) -> None:
    async def go() -> tuple[float, float]:
        client = AsyncRedis.from_url(redis_url)
        limiter = RateLimiter(client, max_ahead_seconds=60)
        await limiter.slow_down("n4", 0.0)
        await limiter.slow_down("n4", 0.0)  # the same burst: counted once
        first = (await limiter.reserve("n4", 100.0, 3)).interval_seconds
        await asyncio.sleep(0.55)
        await limiter.slow_down("n4", 0.0)  # a later burst slows it further
        second = (await limiter.reserve("n4", 100.0, 3)).interval_seconds
        await client.aclose()
        return first, second

    first, second = asyncio.run(go())
    assert abs(first - 0.01) < 0.0002  # 1/100 s: a lone rejection is remembered, no slower
    assert abs(second - 0.0115) < 0.0002  # × 1.15: another while it is remembered


async def _delaying_proxy(redis_url: str, delay: list[float]) -> tuple[asyncio.Server, str]:
    """A TCP proxy in front of Redis that holds each answer back `delay[0]` seconds (as a busy
    event loop reads it late); requests pass at once."""
    parsed = urlparse(redis_url)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hold: bool) -> None:
        while data := await reader.read(65536):
            if hold and delay[0]:
                await asyncio.sleep(delay[0])
            writer.write(data)
            await writer.drain()
        writer.close()

    async def serve(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        redis_r, redis_w = await asyncio.open_connection(parsed.hostname, parsed.port or 6379)
        await asyncio.gather(pipe(client_r, redis_w, False), pipe(redis_r, client_w, True))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"redis://127.0.0.1:{port}{parsed.path or ''}"


def test_an_answer_read_late_does_not_move_the_slots_late(redis_url: str) -> None:
    """An answer read 50 ms late (a busy event loop) must not shift the booked slots 50 ms late:
    they would overlap the next booking and burst over the number's rate. The slots count from
    when Redis booked, on its clock mapped onto ours by quick round trips."""

    async def go() -> tuple[float, float, float, float]:
        delay = [0.0]
        server, url = await _delaying_proxy(redis_url, delay)
        client = AsyncRedis.from_url(url)
        limiter = RateLimiter(client, max_ahead_seconds=60)
        loop = asyncio.get_running_loop()
        for _ in range(10):  # quick round trips tell the clocks' offset
            await limiter.reserve("n5", 1000.0)
        quick_before = loop.time()
        quick = await limiter.reserve("n5", 1000.0)
        delay[0] = 0.05
        before = loop.time()
        late = await limiter.reserve("n5", 1000.0)
        took = loop.time() - before
        await client.aclose()
        server.close()
        spacing = late.issued_at + late.wait_seconds - (quick.issued_at + quick.wait_seconds)
        return quick.issued_at - quick_before, late.issued_at - before, took, spacing

    quick, late, took, spacing = asyncio.run(go())
    assert took >= 0.05  # the answer was read late
    assert 0 <= quick < 0.01 and 0 <= late < 0.01  # booked when sent, not when read
    assert abs(spacing - 0.001) < 0.002  # the next slot, one interval on
