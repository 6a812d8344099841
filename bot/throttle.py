"""Card-edit throttling in Redis: one edit per card every few seconds, one workspace budget.

chat.update is Tier 3 (about 50 a minute per workspace and app); cards of every running broadcast
share one budget kept below that, and each card is edited at most once per PER_CARD_SECONDS.
Edits that must show (a new status, the final state) skip the per-card wait but still count.
"""

from __future__ import annotations

from redis import Redis

PER_CARD_SECONDS = 3.0
WORKSPACE_PER_MINUTE = 40


class CardThrottle:
    def __init__(
        self,
        redis: Redis[bytes],
        *,
        per_card_seconds: float = PER_CARD_SECONDS,
        per_minute: int = WORKSPACE_PER_MINUTE,
    ) -> None:
        self.redis = redis
        self.per_card_ms = int(per_card_seconds * 1000)
        self.per_minute = per_minute

    def _minute_key(self) -> str:
        # Redis' own clock, so every worker counts in the same minute.
        seconds, _ = self.redis.time()
        return f"bb:slack:updates:{int(seconds) // 60}"

    def _spend(self) -> int:
        key = self._minute_key()
        pipe = self.redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, 120)
        return int(pipe.execute()[0])

    def try_acquire(self, broadcast_id: str) -> bool:
        """True when this card may be edited now (and the edit is counted)."""
        if not self.redis.set(f"bb:slack:card:{broadcast_id}", b"1", nx=True, px=self.per_card_ms):
            return False
        return not self._spend() > self.per_minute

    def force(self, broadcast_id: str) -> None:
        """Count an edit that goes out regardless (status changes, the final state)."""
        self.redis.set(f"bb:slack:card:{broadcast_id}", b"1", px=self.per_card_ms)
        self._spend()

    def claim_trailing(self, broadcast_id: str) -> bool:
        """True for the one caller that should schedule the catch-up edit of a skipped refresh."""
        return bool(
            self.redis.set(f"bb:slack:trail:{broadcast_id}", b"1", nx=True, px=self.per_card_ms * 2)
        )

    def release_trailing(self, broadcast_id: str) -> None:
        """The catch-up edit is under way: later skipped refreshes may schedule another."""
        self.redis.delete(f"bb:slack:trail:{broadcast_id}")

    def once(self, key: str, ttl_seconds: int = 7 * 86400) -> bool:
        """True the first time `key` is seen (milestones, redelivered files)."""
        return bool(self.redis.set(f"bb:slack:once:{key}", b"1", nx=True, ex=ttl_seconds))

    def wait_seconds(self) -> float:
        return self.per_card_ms / 1000 + 0.5
