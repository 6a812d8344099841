"""The Redis limiter hands out evenly spaced slots to every caller, on the Redis clock."""

from __future__ import annotations

import asyncio
import multiprocessing

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from jobs.limiter import RateLimiter, reserve_sync


def _slots(redis_url: str, n: int, rate: float) -> list[float]:
    async def go() -> list[float]:
        client = AsyncRedis.from_url(redis_url)
        limiter = RateLimiter(client, max_ahead_seconds=60)
        waits = [(await limiter.reserve("n1", rate)).wait_seconds for _ in range(n)]
        await client.aclose()
        return waits

    return asyncio.run(go())


def test_reservations_are_spaced_by_the_rate(redis_url: str) -> None:
    waits = _slots(redis_url, 50, 100.0)
    # Booked back to back: the k-th slot is about k/100 s ahead (the calls themselves take time).
    assert waits[0] == 0
    assert 0.40 <= waits[-1] <= 0.50
    assert waits == sorted(waits)


def test_a_number_is_shared_by_processes_and_separate_from_others(redis_url: str) -> None:
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.starmap(_slots, [(redis_url, 100, 50.0)] * 2)
    all_waits = sorted(results[0] + results[1])
    # 200 slots at 50/s span about 4 s no matter which process booked them.
    assert 3.8 <= all_waits[-1] <= 4.05
    assert _slots(redis_url, 1, 50.0)[0] > 3.5  # the number is still busy
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
    assert abs(first - 0.0115) < 0.0002  # 1/100 s × 1.15
    assert abs(second - 0.013225) < 0.0002  # × 1.15 again
