"""Card-edit budget in Redis: at most one edit per card per second, one workspace budget a minute.

Slack allows about one chat.update per second on a message and chat.update is Tier 3 (about 50 a
minute per workspace and app), so every running card shares one budget kept below that. Nothing
skips the budget, not even a new status or the final state: those mark the card dirty and the
next edit the budget allows shows them (bot.slack.notifications). Keys live on Redis' clock, so
every process counts the same seconds.
"""

from __future__ import annotations

from redis import Redis

from jobs import keys

PER_CARD_SECONDS = 1.0
WORKSPACE_PER_MINUTE = 40
JITTER_MARGIN = 1.1


class CardThrottle:
    def __init__(
        self,
        redis: Redis[bytes],
        *,
        per_card_seconds: float = PER_CARD_SECONDS,
        per_minute: int = WORKSPACE_PER_MINUTE,
    ) -> None:
        self.redis = redis
        # Slack counts arrivals: an edit sent a second after another can arrive sooner than
        # that, so the window keeps a tenth more.
        self.per_card_ms = max(1, int(per_card_seconds * 1000 * JITTER_MARGIN))
        self.per_minute = per_minute

    # -- the budget -------------------------------------------------------------------------

    def reserve(self, broadcast_id: str) -> float:
        """0 when this card may be edited now (the edit is counted), else seconds to wait."""
        key = keys.card_budget(broadcast_id)
        if not self.redis.set(key, b"1", nx=True, px=self.per_card_ms):
            return max(int(self.redis.pttl(key)), 1) / 1000
        seconds, _ = self.redis.time()
        minute = int(seconds) // 60
        spend_key = keys.workspace_edits(minute)
        pipe = self.redis.pipeline()
        pipe.incr(spend_key)
        pipe.expire(spend_key, 120)
        if int(pipe.execute()[0]) > self.per_minute:
            wait = 60 - int(seconds) % 60
            self.redis.set(key, b"1", px=wait * 1000)  # this card's turn comes next minute
            return float(wait)
        return 0.0

    def push_back(self, broadcast_id: str, seconds: float) -> None:
        """No edit of this card for `seconds` (Slack answered 429 with Retry-After)."""
        ms = max(self.per_card_ms, int(seconds * 1000))
        self.redis.set(keys.card_budget(broadcast_id), b"1", px=ms)

    # -- what the card still has to show ----------------------------------------------------

    def mark_dirty(self, broadcast_id: str) -> None:
        self.redis.set(keys.card_dirty(broadcast_id), b"1", ex=86400)

    def is_dirty(self, broadcast_id: str) -> bool:
        return bool(self.redis.exists(keys.card_dirty(broadcast_id)))

    def take_dirty(self, broadcast_id: str) -> bool:
        """Clear the mark before reading the card, so a change after the read marks it again."""
        return bool(self.redis.delete(keys.card_dirty(broadcast_id)))

    def same_as_shown(self, broadcast_id: str, digest: str) -> bool:
        shown = self.redis.get(keys.card_shown(broadcast_id))
        return shown is not None and shown.decode() == digest

    def shown(self, broadcast_id: str, digest: str) -> None:
        self.redis.set(keys.card_shown(broadcast_id), digest.encode(), ex=7 * 86400)

    # -- the catch-up edit ------------------------------------------------------------------

    def claim_trailing(self, broadcast_id: str, seconds: float) -> bool:
        """True for the one caller that should schedule the catch-up edit in `seconds`."""
        ms = int(seconds * 1000) + 5000  # lapses if the scheduled job was lost with Redis
        return bool(self.redis.set(keys.card_catch_up(broadcast_id), b"1", nx=True, px=ms))

    def release_trailing(self, broadcast_id: str) -> None:
        """The catch-up edit is under way: later changes may schedule another."""
        self.redis.delete(keys.card_catch_up(broadcast_id))

    def once(self, key: str, ttl_seconds: int = 7 * 86400) -> bool:
        """True the first time `key` is seen (milestones, redelivered files)."""
        return bool(self.redis.set(keys.slack_once(key), b"1", nx=True, ex=ttl_seconds))
