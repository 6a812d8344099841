"""What the Send confirmation tells before a broadcast starts: recipients, pace, per country,
warnings; the same figures for Slack's Send modal and the CLI's `start`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcasts import service
from broadcasts.configs import tier_limit
from broadcasts.enums import RecipientStatus
from broadcasts.imports.phones import by_country
from broadcasts.metrics import stored_counts
from broadcasts.models import Broadcast, Recipient
from broadcasts.pacing import estimate_seconds
from broadcasts.recipients import first_params


@dataclass(frozen=True)
class SendPreview:
    """A startable broadcast as its Send confirmation shows it."""

    broadcast_id: str
    name: str
    template_name: str
    template_body: str
    recipients: int  # still to send
    batch_size: int
    batch_pause_seconds: float
    rate_mps: float
    estimate_seconds: float
    warnings: tuple[str, ...]
    countries: tuple[tuple[str, int], ...]  # (calling code, recipients), most first
    sample_params: dict[str, Any]  # the first pending recipient's, to show a rendered message


def send_preview(session: Session, ref: str) -> SendPreview:
    """What sending `ref` now would do, or the reason it cannot start (check_startable)."""
    broadcast = service.get_broadcast(session, ref)
    service.check_startable(session, broadcast)
    batch_size, pause, rate = service.effective_pacing(broadcast)
    recipients = stored_counts(broadcast).pending
    return SendPreview(
        broadcast_id=broadcast.id,
        name=broadcast.name,
        template_name=broadcast.template.name,
        template_body=broadcast.template.body_text,
        recipients=recipients,
        batch_size=batch_size,
        batch_pause_seconds=pause,
        rate_mps=rate,
        estimate_seconds=estimate_seconds(
            recipients, batch_size=batch_size, pause_seconds=pause, rate=rate
        ),
        warnings=tuple(send_warnings(broadcast, recipients)),
        countries=tuple(recipients_by_country(session, broadcast.id).items()),
        sample_params=first_params(session, broadcast.id, pending_only=True),
    )


def recipients_by_country(session: Session, broadcast_id: str) -> dict[str, int]:
    """Recipients still to send per calling code ({"+44": 120, "+1": 3}), most first.

    Grouped in the database by the number's first three digits (a calling code has one to
    three), so a million recipients cost one indexed scan, not a million rows in Python.
    """
    prefix = func.substr(Recipient.phone, 1, 4)
    rows = session.execute(
        select(prefix, func.count())
        .where(Recipient.broadcast_id == broadcast_id, Recipient.status == RecipientStatus.PENDING)
        .group_by(prefix)
    ).all()
    return by_country({str(p): int(n) for p, n in rows})


def send_warnings(broadcast: Broadcast, recipients: int) -> list[str]:
    """Reasons to think twice; `*marketing*`-style emphasis is the only markup."""
    warnings = []
    config = broadcast.config
    limit = tier_limit(config.messaging_limit)
    if limit is not None and recipients > limit:
        warnings.append(
            f"{recipients:,} recipients is more than this number's messaging limit "
            f"({config.messaging_limit}: {limit:,} people per 24 h, shared by the business "
            "portfolio): WhatsApp refuses the rest until the window rolls over."
        )
    elif config.messaging_limit is None:
        warnings.append(
            "This number's messaging limit is not known yet (a template sync or a health check "
            "reads it): WhatsApp may refuse recipients beyond it."
        )
    if broadcast.template.category.upper() == "MARKETING":
        warnings.append(
            "This is a *marketing* template: it is billed as marketing, and people who "
            "opted out of marketing or hit Meta's per-person limit will not receive it."
        )
    return warnings
