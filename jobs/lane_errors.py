"""What a lane does with an error answer: the outcome for the recipient, and whether the whole
broadcast stops. Every decision comes from the error table (kapso.errors); this only applies it.
"""

from __future__ import annotations

from datetime import timedelta

from broadcasts import sending
from broadcasts.backoff import backoff_seconds
from broadcasts.models import utcnow
from broadcasts.sending import OutcomeKind
from jobs.lane_stop import Halt, StopReason
from jobs.limiter import RateLimiter
from kapso.errors import ErrorAction, WhatsAppError

THROTTLE_PUSH = 0.25  # on 130429 the number waits this long and slows down (see jobs.limiter)
# The same unknown code this many times in a row pauses the broadcast with Meta's message.
UNKNOWN_PAUSE_AFTER = 3


class ErrorPolicy:
    """One per lane run: remembers the run of unknown codes, the 130429 answers and the error
    that stops the broadcast (the first one wins)."""

    def __init__(self, limiter: RateLimiter, phone_number_id: str, halt: Halt) -> None:
        self.limiter = limiter
        self.phone_number_id = phone_number_id
        self.halt = halt
        self.throttled = 0
        self.broadcast_error: WhatsAppError | None = None
        self._unknown: tuple[int | None, int] = (None, 0)  # (code, how many in a row)

    async def outcome(self, r: sending.Claimed, exc: WhatsAppError) -> sending.Outcome:
        c = exc.classification
        unknown_run = 0
        if c.action is ErrorAction.UNKNOWN:  # known codes in between do not break the run
            last, n = self._unknown
            unknown_run = n + 1 if last == exc.code else 1
            self._unknown = (exc.code, unknown_run)
        if c.stops_broadcast or unknown_run >= UNKNOWN_PAUSE_AFTER:
            if self.broadcast_error is None:
                self.broadcast_error = _paused_for_unknown(exc, unknown_run)
            self.halt.stop(StopReason.BROADCAST_ERROR)
            return sending.Outcome(r.id, OutcomeKind.RELEASE, counts_as_attempt=False)
        if c.action is ErrorAction.FAIL_RECIPIENT:
            return _failed(r, exc)
        if c.action is ErrorAction.SKIP_RECIPIENT:
            reason = f"{c.summary} (WhatsApp error {exc.kapso_code or exc.code})"
            return sending.Outcome(
                r.id, OutcomeKind.SKIP, code=exc.code, title=reason, opt_out=c.opt_out
            )
        if exc.code == 130429 or exc.http_status == 429:
            self.throttled += 1
            push = min(c.delay_seconds or 1.0, THROTTLE_PUSH)
            await self.limiter.slow_down(self.phone_number_id, push)
            return sending.Outcome(
                r.id,
                OutcomeKind.RETRY,
                code=exc.code,
                title=exc.title,
                counts_as_attempt=False,
                throttled=True,
            )
        if r.attempts >= sending.MAX_ATTEMPTS:
            return _failed(r, exc)
        backoff = sending.backoff(r.attempts)
        if c.action is ErrorAction.RETRY_RECIPIENT:
            # WhatsApp's own advice for these codes: wait longer each time (4 s, 16 s … 1 h).
            backoff = backoff_seconds(r.attempts, base=4.0, factor=4.0, cap=3600.0)
        # The table's delay is a floor: a 24 h marketing limit is never retried sooner.
        delay = max(c.delay_seconds or 0.0, backoff)
        return sending.Outcome(
            r.id,
            OutcomeKind.RETRY,
            code=exc.code,
            title=exc.title,
            detail=exc.details,
            retry_at=utcnow() + timedelta(seconds=delay),
        )


def _failed(r: sending.Claimed, exc: WhatsAppError) -> sending.Outcome:
    return sending.Outcome(
        r.id,
        OutcomeKind.FAILED,
        code=exc.code,
        title=exc.title,
        detail=exc.details,
        opt_out=exc.classification.opt_out,
    )


def _paused_for_unknown(exc: WhatsAppError, unknown_run: int) -> WhatsAppError:
    if unknown_run < UNKNOWN_PAUSE_AFTER:
        return exc
    return WhatsAppError(
        code=exc.code,
        title=exc.title,
        details=exc.details,
        http_status=exc.http_status,
        config_name=exc.config_name,
        hint=f"Paused after {unknown_run} sends in a row got this code, which the bot "
        "does not know: look it up in Meta's error codes, then resume.",
    )
