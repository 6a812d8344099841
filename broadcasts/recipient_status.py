"""Recipient status changes, forward-only, each keeping the broadcast counters in step.

Every write of a recipient's status and every change of a broadcast's counters goes through
this module (one row at a time, or in bulk for the sending path), so the counters always equal
a recount of the rows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Row, select, text, update
from sqlalchemy.orm import Session

from broadcasts.enums import UNSENT, BroadcastStatus
from broadcasts.enums import RecipientStatus as R
from broadcasts.lifecycle import ACTIVE
from broadcasts.metrics import Counts, bump, counts_of
from broadcasts.models import Broadcast, Recipient, utcnow

UNKNOWN_OUTCOME = "not confirmed: the worker stopped while the broadcast was being stopped"

RANK = {R.PENDING: 0, R.SENDING: 1, R.SENT: 2, R.DELIVERED: 3, R.READ: 4}
TERMINAL = frozenset({R.FAILED, R.SKIPPED})


class CounterDeltas:
    """Counter changes gathered over many recipients, written with one UPDATE per broadcast."""

    def __init__(self) -> None:
        self._by_broadcast: dict[str, Counts] = defaultdict(Counts)

    def add(self, broadcast_id: str, delta: Counts) -> None:
        if not delta.is_zero():
            self._by_broadcast[broadcast_id] = self._by_broadcast[broadcast_id] + delta

    def merge(self, other: CounterDeltas) -> None:
        for broadcast_id, delta in other._by_broadcast.items():
            self.add(broadcast_id, delta)

    def broadcast_ids(self) -> list[str]:
        """The broadcasts whose counters change at the next flush."""
        return list(self._by_broadcast)

    def flush(self, session: Session) -> None:
        for broadcast_id, delta in self._by_broadcast.items():
            bump(session, broadcast_id, delta)
        self._by_broadcast.clear()


@contextmanager
def tracked(
    session: Session, recipient: Recipient, deltas: CounterDeltas | None = None
) -> Iterator[Recipient]:
    """Apply the changes made inside the block to the broadcast counters (now, or via `deltas`)."""
    before = counts_of(recipient)
    yield recipient
    delta = counts_of(recipient) - before
    if deltas is not None:
        deltas.add(recipient.broadcast_id, delta)
    else:
        bump(session, recipient.broadcast_id, delta)


def mark_sent(
    session: Session,
    recipient: Recipient,
    *,
    wamid: str,
    wa_id: str | None,
    message_status: str | None,
    at: datetime | None = None,
    deltas: CounterDeltas | None = None,
) -> bool:
    """Record WhatsApp's acceptance; harmless when a webhook already moved the recipient on."""
    at = at or utcnow()
    with tracked(session, recipient, deltas):
        recipient.wamid = recipient.wamid or wamid
        recipient.wa_id = recipient.wa_id or wa_id
        recipient.message_status = message_status or recipient.message_status
        if recipient.sent_at is None and recipient.status != R.SKIPPED:
            recipient.sent_at = at
        if recipient.status in UNSENT:
            recipient.status = R.SENT
            recipient.next_attempt_at = None
            return True
    return False


def mark_failed(
    session: Session,
    recipient: Recipient,
    *,
    code: int | None,
    title: str | None,
    detail: str | None,
    at: datetime | None = None,
    deltas: CounterDeltas | None = None,
) -> bool:
    """Fail a recipient (at send time or from a webhook); delivered/read ones stay as they are."""
    if recipient.status in TERMINAL or RANK.get(R(recipient.status), 0) >= RANK[R.DELIVERED]:
        return False
    with tracked(session, recipient, deltas):
        recipient.status = R.FAILED
        recipient.failed_at = at or utcnow()
        recipient.error_code = code
        recipient.error_title = (title or "")[:255] or None
        recipient.error_detail = detail
        recipient.next_attempt_at = None
    return True


def mark_skipped(
    session: Session, recipient: Recipient, *, reason: str, deltas: CounterDeltas | None = None
) -> bool:
    if recipient.status not in UNSENT:
        return False
    with tracked(session, recipient, deltas):
        recipient.status = R.SKIPPED
        recipient.skipped_at = utcnow()
        recipient.error_title = reason[:255]
        recipient.next_attempt_at = None
    return True


def apply_delivery_status(
    session: Session,
    recipient: Recipient,
    status: str,
    *,
    at: datetime,
    wamid: str | None = None,
    wa_id: str | None = None,
    error_code: int | None = None,
    error_title: str | None = None,
    error_detail: str | None = None,
    deltas: CounterDeltas | None = None,
) -> bool:
    """Apply a webhook status (sent/delivered/read/failed); never moves backwards, never twice."""
    if status == "failed":
        if wamid and recipient.wamid is None:
            recipient.wamid = wamid
        return mark_failed(
            session,
            recipient,
            code=error_code,
            title=error_title,
            detail=error_detail,
            at=at,
            deltas=deltas,
        )
    if status not in ("sent", "delivered", "read"):
        return False
    # A skipped recipient only gets a status when WhatsApp accepted it after all (a claim whose
    # worker died while the broadcast was cancelled): the webhook is the proof, so it moves on.
    if recipient.status == R.FAILED and status == "sent":
        return False
    before = counts_of(recipient)
    if wamid and recipient.wamid is None:
        recipient.wamid = wamid
    if wa_id and recipient.wa_id is None:
        recipient.wa_id = wa_id
    if recipient.sent_at is None:
        recipient.sent_at = at
    if status in ("delivered", "read") and recipient.delivered_at is None:
        recipient.delivered_at = at
    if status == "read" and recipient.read_at is None:
        recipient.read_at = at
    current = RANK.get(R(recipient.status), RANK[R.SENDING])
    if recipient.status != R.FAILED and RANK[R(status)] > current:
        recipient.status = R(status)
        recipient.next_attempt_at = None
    delta = counts_of(recipient) - before
    if deltas is not None:
        deltas.add(recipient.broadcast_id, delta)
    else:
        bump(session, recipient.broadcast_id, delta)
    return not delta.is_zero()


def retry_after_async_failure(
    session: Session,
    recipient: Recipient,
    *,
    wamid: str,
    code: int | None,
    title: str | None,
    detail: str | None,
    retry_at: datetime,
    deltas: CounterDeltas | None = None,
) -> bool:
    """A retryable `failed` status for the current send: the same row goes back to `pending`
    for a fresh send at `retry_at`; the failed wamid moves to its history (a late status for it
    then changes nothing). False when the row has moved on (delivered, terminal, another send)."""
    if recipient.status in TERMINAL or recipient.wamid != wamid:
        return False
    if RANK.get(R(recipient.status), 0) >= RANK[R.DELIVERED]:
        return False
    with tracked(session, recipient, deltas):
        recipient.wamid_history = [*(recipient.wamid_history or []), wamid]
        recipient.wamid = None
        recipient.message_status = None
        recipient.sent_at = None
        recipient.claimed_at = None
        recipient.status = R.PENDING
        recipient.next_attempt_at = retry_at
        recipient.error_code = code
        recipient.error_title = (title or "")[:255] or None
        recipient.error_detail = detail
    return True


def mark_responded(
    session: Session,
    recipient: Recipient,
    *,
    at: datetime,
    deltas: CounterDeltas | None = None,
    opt_out: bool = False,
) -> bool:
    """Set the responded flag once; a reply asking to opt out (STOP) sets the opted-out flag
    instead, because the seed's response rate counts people who engaged, not who left."""
    if opt_out:
        if recipient.opted_out_at is not None:
            return False
        with tracked(session, recipient, deltas):
            recipient.opted_out_at = at
        return True
    if recipient.responded_at is not None:
        return False
    with tracked(session, recipient, deltas):
        recipient.responded_at = at
    return True


def skip_unsent(session: Session, broadcast_id: str, *, reason: str) -> int:
    """Skip every recipient not yet attempted (cancel); in-flight ones finish on their own."""
    now = utcnow()
    result = session.execute(
        update(Recipient)
        .where(Recipient.broadcast_id == broadcast_id, Recipient.status == R.PENDING)
        .values(status=R.SKIPPED, skipped_at=now, error_title=reason[:255], next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )
    n = int(result.rowcount or 0)  # type: ignore[attr-defined]
    _count_skipped(session, broadcast_id, n)
    return n


# -- recipients added and removed --------------------------------------------------------------


def count_added(session: Session, broadcast_id: str, n: int) -> None:
    """`n` new recipients (all `pending`) joined the broadcast."""
    bump(session, broadcast_id, Counts(total=n, pending=n))


def count_removed(session: Session, broadcast_id: str, n: int) -> None:
    """`n` recipients, all still `pending`, were deleted from the broadcast."""
    bump(session, broadcast_id, Counts(total=-n, pending=-n))


# -- the sending path, in bulk -------------------------------------------------------------------


def claim(session: Session, ids: Sequence[int], *, now: datetime) -> Sequence[Row[Any]]:
    """`pending` → `sending` for the given ids still pending (an attempt more each); returns
    (id, phone, params, attempts) of the rows claimed. Counters do not change: `pending` counts
    recipients in flight too."""
    return session.execute(
        update(Recipient)
        .where(Recipient.id.in_(ids), Recipient.status == R.PENDING)
        .values(status=R.SENDING, claimed_at=now, attempts=Recipient.attempts + 1)
        .returning(Recipient.id, Recipient.phone, Recipient.params, Recipient.attempts)
        .execution_options(synchronize_session=False)
    ).all()


def release(
    recipient: Recipient,
    *,
    retry_at: datetime | None,
    error: tuple[int | None, str | None, str | None] | None = None,
    counts_as_attempt: bool = True,
) -> bool:
    """`sending` → `pending` (a retry, or a claim never attempted); `error` is (code, title,
    detail) of the answer that asks for the retry. Counters do not change."""
    if recipient.status != R.SENDING:
        return False
    recipient.status = R.PENDING
    recipient.claimed_at = None
    recipient.next_attempt_at = retry_at
    if error is not None:
        recipient.error_code, title, recipient.error_detail = error
        recipient.error_title = (title or "")[:255] or None
    if not counts_as_attempt:
        recipient.attempts = max(0, recipient.attempts - 1)
    return True


class Accepted(Protocol):
    """A send WhatsApp accepted (sending.Outcome has these fields)."""

    @property
    def recipient_id(self) -> int: ...
    @property
    def wamid(self) -> str | None: ...
    @property
    def wa_id(self) -> str | None: ...
    @property
    def message_status(self) -> str | None: ...


def mark_many_sent(session: Session, sent: Sequence[Accepted], *, at: datetime) -> set[int]:
    """The common case in bulk: recipients still `sending` become `sent` and the counters move,
    with one counter UPDATE per broadcast. Returns the ids left for `mark_sent` one by one (a
    webhook got there first, or the row moved on)."""
    if not sent:
        return set()
    if session.get_bind().dialect.name == "postgresql":
        plain = _sent_in_one_statement(session, sent, at)
    else:
        plain = _sent_row_by_row(session, sent, at)
    for broadcast_id, n in Counter(plain.values()).items():
        bump(session, broadcast_id, Counts(pending=-n, sent=n))
    return {a.recipient_id for a in sent} - set(plain)


# Fixed text whatever the group size (arrays, not a VALUES list), so the server keeps it prepared
# and nothing is compiled per group.
_SENT_IN_BULK = text(
    """
    UPDATE recipients AS r
    SET status = :sent, wamid = v.wamid, wa_id = v.wa_id, message_status = v.message_status,
        sent_at = :at, next_attempt_at = NULL
    FROM unnest(
        CAST(:ids AS bigint[]), CAST(:wamids AS text[]), CAST(:wa_ids AS text[]),
        CAST(:message_statuses AS text[])
    ) AS v(id, wamid, wa_id, message_status)
    WHERE r.id = v.id AND r.status = :sending AND r.sent_at IS NULL
    RETURNING r.id, r.broadcast_id
    """
)


def _sent_in_one_statement(
    session: Session, sent: Sequence[Accepted], at: datetime
) -> dict[int, str]:
    """PostgreSQL: one UPDATE … FROM unnest(arrays) RETURNING — the rows it matches are locked
    and changed in the same statement, one round trip for a whole group."""
    rows = session.execute(
        _SENT_IN_BULK,
        {
            "sent": R.SENT.value,
            "sending": R.SENDING.value,
            "at": at,
            "ids": [a.recipient_id for a in sent],
            "wamids": [a.wamid for a in sent],
            "wa_ids": [a.wa_id for a in sent],
            "message_statuses": [a.message_status for a in sent],
        },
    )
    return {row[0]: row[1] for row in rows}


def _sent_row_by_row(session: Session, sent: Sequence[Accepted], at: datetime) -> dict[int, str]:
    """SQLite (one writer at a time, so the SELECT cannot be overtaken): an executemany."""
    ids = [a.recipient_id for a in sent]
    query = select(Recipient.id, Recipient.broadcast_id).where(
        Recipient.id.in_(ids), Recipient.status == R.SENDING, Recipient.sent_at.is_(None)
    )
    plain: dict[int, str] = {row[0]: row[1] for row in session.execute(query)}
    if plain:
        session.execute(
            update(Recipient).execution_options(synchronize_session=False),
            [
                {
                    "id": a.recipient_id,
                    "status": R.SENT.value,
                    "wamid": a.wamid,
                    "wa_id": a.wa_id,
                    "message_status": a.message_status,
                    "sent_at": at,
                    "next_attempt_at": None,
                }
                for a in sent
                if a.recipient_id in plain
            ],
        )
    return plain


def release_stale_claims(
    session: Session, *, older_than: timedelta, now: datetime | None = None
) -> int:
    """Put claims whose outcome never came (killed worker) back to `pending`.

    In a broadcast cancelled or failed meanwhile they become `skipped` instead (nothing will send
    them); a status webhook proving one was accepted still moves it on to `sent`. Only broadcasts
    that are not finished are looked at, through the (broadcast, status) index.
    """
    now = now or utcnow()
    cutoff = now - older_than
    stale = (Recipient.status == R.SENDING, Recipient.claimed_at < cutoff)
    active = select(Broadcast.id).where(Broadcast.status.in_(ACTIVE))
    released = session.execute(
        update(Recipient)
        .where(Recipient.broadcast_id.in_(active), *stale)
        .values(status=R.PENDING, claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    stopped = select(Broadcast.id).where(
        Broadcast.status.in_([BroadcastStatus.CANCELLED, BroadcastStatus.FAILED])
    )
    skipped = session.execute(
        update(Recipient)
        .where(Recipient.broadcast_id.in_(stopped), *stale)
        .values(status=R.SKIPPED, skipped_at=now, claimed_at=None, error_title=UNKNOWN_OUTCOME)
        .returning(Recipient.broadcast_id)
        .execution_options(synchronize_session=False)
    ).all()
    for broadcast_id, n in Counter(row[0] for row in skipped).items():
        _count_skipped(session, broadcast_id, n)
    return int(released.rowcount or 0) + len(skipped)  # type: ignore[attr-defined]


def _count_skipped(session: Session, broadcast_id: str, n: int) -> None:
    """`n` pending recipients were skipped in bulk."""
    bump(session, broadcast_id, Counts(pending=-n, skipped=n))
