"""What the Send confirmation tells before a broadcast starts: recipients per country, warnings."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcasts.configs import tier_limit
from broadcasts.enums import RecipientStatus
from broadcasts.imports.phones import by_country
from broadcasts.models import Broadcast, Recipient


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
    """Reasons to think twice, in Slack mrkdwn (also readable as plain text in the CLI)."""
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
            "This number's messaging limit is not known yet (`broadcast-bot templates sync` or "
            "`broadcast-bot doctor` reads it): WhatsApp may refuse recipients beyond it."
        )
    if broadcast.template.category.upper() == "MARKETING":
        warnings.append(
            "This is a *marketing* template: it is billed as marketing, and people who "
            "opted out of marketing or hit Meta's per-person limit will not receive it."
        )
    return warnings
