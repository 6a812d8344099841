"""A per-phone-number rate limiter in Redis (GCRA on the Redis server's clock), shared by every
worker on every machine.

`reserve` books the next free send slot and says how long to wait for it, so callers on any
number of processes get distinct, evenly spaced slots; nobody polls. A 130429 answer pushes the
whole number back (`slow_down`) and lowers its rate for a while.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

# KEYS: tat, penalty. ARGV: interval_us, max_ahead_us, penalty_factor.
# Returns {granted (1|0), wait_us}.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
  interval = interval * tonumber(ARGV[3])
end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now
if wait > tonumber(ARGV[2]) then
  return {0, wait}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, wait}
"""

# KEYS: tat, penalty. ARGV: delay_us, penalty_ms.
_SLOW_DOWN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local target = now + tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < target then
  redis.call('SET', KEYS[1], string.format('%.0f', target), 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
end
redis.call('SET', KEYS[2], '1', 'PX', tonumber(ARGV[2]))
return 1
"""

PENALTY_FACTOR = 1.25  # rate ÷ 1.25 while a number is penalised
PENALTY_MS = 30_000


@dataclass(frozen=True)
class Reservation:
    granted: bool
    wait_seconds: float


def _keys(phone_number_id: str) -> list[str]:
    return [f"bb:rate:{phone_number_id}:tat", f"bb:rate:{phone_number_id}:penalty"]


class RateLimiter:
    """Async limiter used by the sending lanes (one Redis round trip per message)."""

    def __init__(self, redis: AsyncRedis[bytes], *, max_ahead_seconds: float = 1.0) -> None:
        self._redis = redis
        self._reserve = redis.register_script(_RESERVE)
        self._slow_down = redis.register_script(_SLOW_DOWN)
        self._max_ahead_us = int(max_ahead_seconds * 1_000_000)
        self.waited_seconds = 0.0

    async def reserve(self, phone_number_id: str, rate_per_second: float) -> Reservation:
        interval_us = 1_000_000 / rate_per_second
        granted, wait_us = await self._reserve(
            keys=_keys(phone_number_id), args=[interval_us, self._max_ahead_us, PENALTY_FACTOR]
        )
        return Reservation(bool(granted), int(wait_us) / 1_000_000)

    async def acquire(self, phone_number_id: str, rate_per_second: float) -> None:
        """Wait until this process may send one message on the number."""
        while True:
            reservation = await self.reserve(phone_number_id, rate_per_second)
            if reservation.wait_seconds > 0:
                self.waited_seconds += reservation.wait_seconds
                await asyncio.sleep(reservation.wait_seconds)
            if reservation.granted:
                return

    async def slow_down(self, phone_number_id: str, delay_seconds: float) -> None:
        await self._slow_down(
            keys=_keys(phone_number_id), args=[int(delay_seconds * 1_000_000), PENALTY_MS]
        )


def reserve_sync(redis: Redis[bytes], phone_number_id: str, rate_per_second: float) -> Reservation:
    """The same reservation from synchronous code (test sends, tests)."""
    script = redis.register_script(_RESERVE)
    granted, wait_us = script(
        keys=_keys(phone_number_id),
        args=[1_000_000 / rate_per_second, 1_000_000, PENALTY_FACTOR],
    )
    return Reservation(bool(granted), int(wait_us) / 1_000_000)
