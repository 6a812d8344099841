"""Follow-ups of a broadcast: "Retry failed" as a new linked draft, and "Duplicate".

A retry is a *new* draft broadcast linked to the original (`retry_of_id`), never the original
sent again in place: the original keeps its final status, counters and report untouched (the seed
makes finished broadcasts read-only), the retry gets its own card, Send confirmation and metrics,
and each retry can be reviewed (and edited) before anything is sent.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcasts import audit, service
from broadcasts.actors import Actor
from broadcasts.enums import REACHED
from broadcasts.enums import RecipientStatus as R
from broadcasts.errors import IllegalTransition, ValidationFailed
from broadcasts.lifecycle import READ_ONLY
from broadcasts.models import Broadcast, Contact, Recipient, utcnow
from broadcasts.recipient_status import UNKNOWN_OUTCOME
from broadcasts.recipients import NewRecipient, insert_recipients

CHUNK = 1000
NAME_LIMIT = 200
RETRY_SUFFIX = re.compile(r" \(retry(?: (\d+))?\)$")

# After a failure with an error code (None: no code, e.g. a network error), how many seconds until
# the same message may be sent again: 0 when the failure said nothing against the recipient (the
# API was busy or down until our attempts ran out, or the number, template or credential had a
# problem an operator has since fixed), a wait when WhatsApp asks for one (Meta's per-user
# marketing limit: a day), None when it never will. WhatsApp's error table decides; the domain
# cannot read it, so callers pass it in (`kapso.errors.resend_wait`).
ResendWait = Callable[[int | None], float | None]

# Why a recipient of the original is not in the retry, in the words a user reads.
LEFT_OUT = {
    "delivered": "reached WhatsApp (sent, delivered or read)",
    "permanent": "failed for a reason a retry cannot fix (number not on WhatsApp, bad parameter…)",
    "marketing_limit": "hit Meta's per-user marketing limit (131049) less than 24 h ago",
    "outcome_unknown": "may have been sent (the worker stopped mid-send), so are not sent twice",
    "opted_out": "opted out since",
    "already_retried": "are already in an earlier retry of this broadcast",
}


@dataclass
class RetrySelection:
    """Who a retry of a broadcast would send to, and who is left out and why."""

    recipients: list[NewRecipient] = field(default_factory=list)
    failed: int = 0  # retryable failures taken
    unsent: int = 0  # never attempted (pending or skipped by a stop), taken
    left_out: Counter[str] = field(default_factory=Counter)
    permanent_codes: Counter[str] = field(default_factory=Counter)
    marketing_limit_until: datetime | None = None  # when the last 131049 one becomes retryable

    @property
    def total(self) -> int:
        return len(self.recipients)

    def explain(self) -> str:
        """One sentence: what is in the retry and what is left out."""
        text = (
            f"{self.total:,} to retry ({self.failed:,} failed with a retryable error, "
            f"{self.unsent:,} never attempted)"
        )
        left_out = self.left_out_text()
        return text + (f"; left out: {left_out}." if left_out else ".")

    def left_out_text(self) -> str:
        parts = []
        for key, n in self.left_out.most_common():
            if key == "delivered":
                continue
            part = f"{n:,} {LEFT_OUT[key]}"
            if key == "marketing_limit" and self.marketing_limit_until is not None:
                part += f" (retry them after {self.marketing_limit_until:%Y-%m-%d %H:%M} UTC)"
            if key == "permanent" and self.permanent_codes:
                codes = ", ".join(f"{c} ×{k:,}" for c, k in self.permanent_codes.most_common(3))
                part += f": {codes}"
            parts.append(part)
        return "; ".join(parts)


def _verdict(r: Recipient, now: datetime, resend_wait: ResendWait) -> str:
    """'failed' or 'unsent' when the recipient should be retried, else a LEFT_OUT key."""
    if r.status == R.PENDING:
        # A pending recipient with an error was waiting for its next attempt when sending stopped.
        return "unsent" if r.error_code is None else "failed"
    if r.status == R.SKIPPED:
        if r.sent_at is not None:
            return "delivered"
        return "outcome_unknown" if r.error_title == UNKNOWN_OUTCOME else "unsent"
    if r.status == R.SENDING:
        return "outcome_unknown"
    if r.status != R.FAILED:
        return "delivered"
    wait = resend_wait(r.error_code)
    if wait is None:
        return "permanent"
    return "marketing_limit" if _resendable_at(r, wait, now) > now else "failed"


def _resendable_at(r: Recipient, wait: float, now: datetime) -> datetime:
    return (r.failed_at or now) + timedelta(seconds=wait)


def select_retry(
    session: Session,
    broadcast: Broadcast,
    *,
    resend_wait: ResendWait,
    now: datetime | None = None,
) -> RetrySelection:
    """Recipients of a finished broadcast a retry would send to (read-only; see `retry_failed`)."""
    now = now or utcnow()
    in_earlier_retry = select(Recipient.phone).where(
        Recipient.broadcast_id.in_(
            select(Broadcast.id).where(Broadcast.retry_of_id == broadcast.id)
        )
    )
    retried = set(session.scalars(in_earlier_retry))
    opted_out = _opted_out_phones(session, broadcast.id)
    selection = RetrySelection()
    selection.left_out["delivered"] = int(
        session.scalar(
            select(func.count()).where(
                Recipient.broadcast_id == broadcast.id, Recipient.status.in_(REACHED)
            )
        )
        or 0
    )
    query = (
        select(Recipient)
        .where(Recipient.broadcast_id == broadcast.id, Recipient.status.not_in(REACHED))
        .order_by(Recipient.id)
        .execution_options(yield_per=CHUNK)
    )
    for r in session.scalars(query):
        verdict = _verdict(r, now, resend_wait)
        if verdict in ("failed", "unsent"):
            if r.phone in opted_out:
                verdict = "opted_out"
            elif r.phone in retried:
                verdict = "already_retried"
        if verdict == "failed":
            selection.failed += 1
        elif verdict == "unsent":
            selection.unsent += 1
        else:
            selection.left_out[verdict] += 1
            if verdict == "permanent":
                selection.permanent_codes[str(r.error_code)] += 1
            if verdict == "marketing_limit":
                ready = _resendable_at(r, resend_wait(r.error_code) or 0.0, now)
                current = selection.marketing_limit_until
                selection.marketing_limit_until = max(ready, current) if current else ready
            continue
        selection.recipients.append(NewRecipient(r.phone, dict(r.params or {}), r.contact_id))
    return selection


def _opted_out_phones(session: Session, broadcast_id: str) -> set[str]:
    """Numbers of the broadcast whose contact has opted out (now, whatever they had then)."""
    return set(
        session.scalars(
            select(Contact.phone).where(
                Contact.opted_out_at.is_not(None),
                Contact.phone.in_(
                    select(Recipient.phone).where(Recipient.broadcast_id == broadcast_id)
                ),
            )
        )
    )


def _ensure_finished(broadcast: Broadcast, what: str) -> None:
    if broadcast.status not in READ_ONLY:
        raise IllegalTransition(
            f"Broadcast '{broadcast.name}' is {broadcast.status}; {what} once it has finished "
            "(completed, cancelled or failed)."
        )


def _derived_name(name: str, suffix: str) -> str:
    return name[: NAME_LIMIT - len(suffix)].rstrip() + suffix


def _retry_name(session: Session, original: Broadcast) -> str:
    """'Sale (retry)', then 'Sale (retry 2)', … — also for a retry of a retry, never stacked."""
    base = RETRY_SUFFIX.sub("", original.name)
    names = session.scalars(
        select(Broadcast.name).where(Broadcast.name.startswith(base, autoescape=True))
    )
    taken = [
        m.group(1) or "1" for n in names if (m := RETRY_SUFFIX.search(n)) and n[: m.start()] == base
    ]
    if not taken:
        return _derived_name(base, " (retry)")
    return _derived_name(base, f" (retry {max(int(t) for t in taken) + 1})")


def _copy(
    session: Session, original: Broadcast, *, name: str, by: Actor, retry_of: str | None = None
) -> Broadcast:
    """A new draft with the original's configuration, template, pacing and channel."""
    copy = service.create_broadcast(
        session,
        name=name,
        config_ref=original.config_id,
        template_ref=original.template_id,
        by=by,
        channel_id=original.channel_id,
        batch_size=original.batch_size,
        batch_pause_seconds=original.batch_pause_seconds,
        rate_mps=original.rate_mps,
        failure_threshold=original.failure_threshold,
    )
    copy.workspace_id = original.workspace_id
    copy.retry_of_id = retry_of
    session.flush()
    return copy


def preview_retry(
    session: Session,
    broadcast: Broadcast,
    *,
    resend_wait: ResendWait,
    now: datetime | None = None,
) -> RetrySelection:
    """Who a retry would hold, or the reason there can be none (still running, nobody left)."""
    _ensure_finished(broadcast, "retry its failures")
    selection = select_retry(session, broadcast, resend_wait=resend_wait, now=now)
    if not selection.recipients:
        raise ValidationFailed(
            f"Nothing to retry in '{broadcast.name}': "
            + (selection.left_out_text() or "every recipient reached WhatsApp")
            + ".",
            field="recipients",
        )
    return selection


@dataclass(frozen=True)
class RetryResult:
    broadcast: Broadcast
    original: Broadcast
    selection: RetrySelection


def retry_failed(
    session: Session,
    ref: str,
    *,
    by: Actor,
    resend_wait: ResendWait,
    now: datetime | None = None,
) -> RetryResult:
    """A new draft, linked to `ref`, holding its retryable failures and never-attempted recipients.

    Only finished broadcasts (completed, cancelled, failed) can be retried. Permanent failures,
    opted-out contacts, recipients that may have been sent, and 131049 failures younger than 24 h
    are left out; the result says how many of each.
    """
    original = service.get_broadcast(session, ref)
    # Two people pressing "Retry failed" at once must not both take the same recipients: the
    # second waits for the first and then finds them already in a retry (a row lock on
    # PostgreSQL; SQLite transactions here begin IMMEDIATE, so writers queue anyway).
    session.execute(select(Broadcast.id).where(Broadcast.id == original.id).with_for_update())
    selection = preview_retry(session, original, resend_wait=resend_wait, now=now)
    retry = _copy(
        session,
        original,
        name=_retry_name(session, original),
        by=by,
        retry_of=original.id,
    )
    for start in range(0, selection.total, CHUNK):
        insert_recipients(session, retry, selection.recipients[start : start + CHUNK])
    detail = {
        "recipients": selection.total,
        "failed": selection.failed,
        "unsent": selection.unsent,
        "left_out": {k: v for k, v in selection.left_out.items() if v},
    }
    audit.record(
        session,
        "broadcast.retry",
        actor=by.id,
        via=by.via,
        broadcast_id=original.id,
        retry_id=retry.id,
        **detail,
    )
    audit.record(
        session,
        "broadcast.retry_of",
        actor=by.id,
        via=by.via,
        broadcast_id=retry.id,
        original_id=original.id,
        **detail,
    )
    return RetryResult(retry, original, selection)


@dataclass(frozen=True)
class DuplicateResult:
    broadcast: Broadcast
    original: Broadcast
    copied: int
    opted_out: int


def duplicate_broadcast(
    session: Session, ref: str, *, by: Actor, name: str | None = None
) -> DuplicateResult:
    """A new draft with the same configuration, template, pacing and recipients (any status).

    Every recipient starts again as pending with its parameters; contacts that opted out since
    are left out and counted.
    """
    original = service.get_broadcast(session, ref)
    copy = _copy(session, original, name=name or _derived_name(original.name, " (copy)"), by=by)
    opted_out = _opted_out_phones(session, original.id)
    copied = skipped = 0
    batch: list[NewRecipient] = []
    query = (
        select(Recipient.phone, Recipient.params, Recipient.contact_id)
        .where(Recipient.broadcast_id == original.id)
        .order_by(Recipient.id)
        .execution_options(yield_per=CHUNK)
    )
    for phone, params, contact_id in session.execute(query):
        if phone in opted_out:
            skipped += 1
            continue
        batch.append(NewRecipient(phone, dict(params or {}), contact_id))
        if len(batch) >= CHUNK:
            copied += insert_recipients(session, copy, batch)
            batch = []
    if batch:
        copied += insert_recipients(session, copy, batch)
    audit.record(
        session,
        "broadcast.duplicate",
        actor=by.id,
        via=by.via,
        broadcast_id=original.id,
        copy_id=copy.id,
        recipients=copied,
        opted_out=skipped,
    )
    audit.record(
        session,
        "broadcast.duplicate_of",
        actor=by.id,
        via=by.via,
        broadcast_id=copy.id,
        original_id=original.id,
        recipients=copied,
        opted_out=skipped,
    )
    return DuplicateResult(copy, original, copied, skipped)


def retries_of(session: Session, broadcast_id: str) -> list[Broadcast]:
    """The retry broadcasts made from this one, oldest first."""
    return list(
        session.scalars(
            select(Broadcast)
            .where(Broadcast.retry_of_id == broadcast_id)
            .order_by(Broadcast.created_at)
        )
    )
