"""A per-phone-number rate limiter in Redis (GCRA on the Redis server's clock), shared by every
worker on every machine.

`reserve` books the next free send slot and says how long to wait for it, so callers on any
number of processes get distinct, evenly spaced slots; nobody polls. A 130429 answer pushes the
whole number back (`slow_down`) and lowers its rate for a while.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from jobs import keys

# KEYS: tat, penalty. ARGV: interval_us, max_ahead_us, (unused), wanted slots.
# Books up to `wanted` consecutive slots that start within max_ahead of now.
# Returns {slots granted (0 when the next free slot is too far ahead), wait_us, interval_us,
# now_us (the Redis clock the booking was made at)}.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local factor = tonumber(redis.call('HGET', KEYS[2], 'factor') or '1')
interval = interval * factor
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now
local ahead = tonumber(ARGV[2])
if wait > ahead then
  return {0, wait, math.floor(interval), now}
end
local n = math.min(tonumber(ARGV[4]), math.floor((ahead - wait) / interval) + 1)
local new_tat = tat + n * interval
local ttl = math.ceil((new_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl)
return {n, wait, math.floor(interval), now}
"""

# KEYS: tat, penalty. ARGV: delay_us, penalty_ms, step, max_factor, min_gap_us.
# Multiplicative decrease: a 130429 after a calm spell is only remembered (factor 1); each
# further one while it is remembered (at most one per min_gap, since a burst of rejections is one
# event) divides the number's rate by `step` more: the number really is slower. The memory lapses
# penalty_ms after the last one and the full rate returns.
_SLOW_DOWN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('HGET', KEYS[2], 'at') or '0')
if now - last < tonumber(ARGV[5]) then
  return 0
end
local held = redis.call('HGET', KEYS[2], 'factor')
local factor = 1
if held then
  factor = math.min(tonumber(held) * tonumber(ARGV[3]), tonumber(ARGV[4]))
end
redis.call('HSET', KEYS[2], 'factor', tostring(factor), 'at', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]))
local target = now + tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < target then
  local ttl = math.ceil(tonumber(ARGV[1]) / 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.0f', target), 'PX', ttl)
end
return 1
"""

CLOCK_RTT = 0.002  # a Redis answer this quick tells the offset between its clock and ours
# A 130429 after a calm spell does not slow the number: the sender keeps 2 % under the cap and
# sends nothing more than 10 ms late, so a lone one means a burst on the way (the network, the
# API's own timing), not a wrong rate; its messages are retried anyway. Slowing by 5 % for 5 s
# for each such one cost 4 numbers × 200/s a quarter of a second each (the slowest number 182/s
# instead of ~190). A second one within PENALTY_MS is a signal, and the decrease starts there.
PENALTY_STEP = 1.15  # each 130429 after the first while it is remembered slows by this more
PENALTY_MAX = 50.0
PENALTY_MS = 5_000  # the full rate returns this long after the last 130429
PENALTY_MIN_GAP_US = 500_000  # rejections closer together than this are one event


@dataclass(frozen=True)
class Reservation:
    """`slots` send slots, the first in `wait_seconds`, then one every `interval_seconds`."""

    slots: int
    wait_seconds: float
    interval_seconds: float
    issued_at: float = 0.0  # the caller's loop time Redis booked at: slots count from here

    @property
    def granted(self) -> bool:
        return self.slots > 0

    def offsets(self) -> list[float]:
        return [self.wait_seconds + i * self.interval_seconds for i in range(self.slots)]


class RateLimiter:
    """Async limiter used by the sending lanes (one Redis call books many slots)."""

    def __init__(self, redis: AsyncRedis[bytes], *, max_ahead_seconds: float = 1.0) -> None:
        self._redis = redis
        self._reserve = redis.register_script(_RESERVE)
        self._slow_down = redis.register_script(_SLOW_DOWN)
        self._max_ahead_us = int(max_ahead_seconds * 1_000_000)
        self.waited_seconds = 0.0
        # Loop time minus Redis time, from the last answer that came back within CLOCK_RTT.
        self._clock_offset: float | None = None
        self._slowed_at: dict[str, float] = {}  # loop time of the last slow_down, by number

    async def reserve(
        self, phone_number_id: str, rate_per_second: float, slots: int = 1
    ) -> Reservation:
        """Book up to `slots` consecutive slots (fewer when they would start too far ahead)."""
        loop = asyncio.get_running_loop()
        sent = loop.time()
        reply = await self._reserve(
            keys=keys.rate_limiter(phone_number_id),
            args=[1_000_000 / rate_per_second, self._max_ahead_us, 1, slots],
        )
        read = loop.time()
        return _reservation(reply, self._booked_at(sent, read, int(reply[3]) / 1_000_000))

    def _booked_at(self, sent: float, read: float, redis_now: float) -> float:
        """The loop time at which Redis booked: the slots count from there.

        Redis booked somewhere between `sent` and `read`. Reading the answer late (a busy event
        loop) must not shift the slots late: a group sent late overlaps the next group, booked
        on time, which is a burst over the number's rate. So Redis's clock is mapped onto the
        loop's through the offset seen on a quick round trip (exact to within CLOCK_RTT, and late
        rather than early); without one yet, or should the clocks disagree (a clock step), the
        answer's reading time is taken, as slots reached late are only booked again while slots
        reached early would overlap another process's."""
        if read - sent <= CLOCK_RTT:
            self._clock_offset = read - redis_now
        if self._clock_offset is None:
            return read
        mapped = redis_now + self._clock_offset
        return mapped if sent <= mapped <= read else read

    async def acquire(
        self, phone_number_id: str, rate_per_second: float, slots: int = 1
    ) -> Reservation:
        """Book at least one slot, waiting while the number is booked beyond the horizon."""
        while True:
            reservation = await self.reserve(phone_number_id, rate_per_second, slots)
            if reservation.granted:
                self.waited_seconds += reservation.wait_seconds
                return reservation
            self.waited_seconds += reservation.wait_seconds
            await asyncio.sleep(reservation.wait_seconds - self._max_ahead_us / 1_000_000 / 2)

    async def slow_down(self, phone_number_id: str, delay_seconds: float) -> None:
        """Push the number back and lower its rate (see _SLOW_DOWN). The answers to one burst
        come back together, hundreds at a time, and count as one event: only the first makes
        the Redis call (one per answer exhausted the lane's Redis connections)."""
        now = asyncio.get_running_loop().time()
        if now - self._slowed_at.get(phone_number_id, -math.inf) < PENALTY_MIN_GAP_US / 1e6:
            return
        self._slowed_at[phone_number_id] = now
        await self._slow_down(
            keys=keys.rate_limiter(phone_number_id),
            args=[
                int(delay_seconds * 1_000_000),
                PENALTY_MS,
                PENALTY_STEP,
                PENALTY_MAX,
                PENALTY_MIN_GAP_US,
            ],
        )


def _reservation(reply: list[int], issued_at: float = 0.0) -> Reservation:
    slots, wait_us, interval_us = (int(v) for v in reply[:3])
    return Reservation(slots, wait_us / 1_000_000, interval_us / 1_000_000, issued_at)


def reserve_sync(
    redis: Redis[bytes], phone_number_id: str, rate_per_second: float, slots: int = 1
) -> Reservation:
    """The same reservation from synchronous code (test sends, tests)."""
    script = redis.register_script(_RESERVE)
    reply = script(
        keys=keys.rate_limiter(phone_number_id),
        args=[1_000_000 / rate_per_second, 1_000_000, 1, slots],
    )
    return _reservation(reply)
