"""The broadcast card posted in the channel: status, set-up, live metrics and the buttons."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.slack.blocks import ids
from bot.slack.blocks.kit import (
    Block,
    actions,
    button,
    confirm_dialog,
    context,
    escape,
    fields_section,
    header,
    mention,
    number,
    percent,
    progress_bar,
    section,
    slack_date,
)
from broadcasts.durations import duration_text
from broadcasts.enums import BroadcastStatus as S
from broadcasts.lifecycle import EDITABLE, READ_ONLY
from broadcasts.metrics import RATES, Counts

STATUS_LABEL: dict[str, str] = {
    S.DRAFT: "📝 Draft",
    S.SCHEDULED: "⏰ Scheduled",
    S.SENDING: "🚀 Sending",
    S.PAUSED: "⏸️ Paused",
    S.COMPLETED: "✅ Completed",
    S.CANCELLED: "🚫 Cancelled",
    S.FAILED: "❌ Failed",
}
REASON_SHOWN = frozenset({S.PAUSED, S.FAILED, S.CANCELLED})  # the status line says why


def status_label(status: str) -> str:
    return STATUS_LABEL.get(status, status)


@dataclass(frozen=True)
class CardData:
    """Everything the card shows, already read from the database."""

    broadcast_id: str
    name: str
    status: str
    config_name: str
    template_name: str
    template_language: str
    template_category: str
    agent_name: str
    created_by: str
    counts: Counts
    rate_mps: float
    batch_size: int
    batch_pause_seconds: float
    display_number: str | None = None
    status_reason: str | None = None
    scheduled_at: datetime | None = None
    eta_seconds: float | None = None
    failures: tuple[tuple[str, int], ...] = field(default_factory=tuple)
    last_import: str | None = None


def fallback_text(card: CardData) -> str:
    """The notification text of the card (also what screen readers get)."""
    c = card.counts
    label = status_label(card.status)
    name = escape(card.name)
    if card.status in EDITABLE:
        return f"Broadcast {name}: {label}, {number(c.total)} recipients"
    return (
        f"Broadcast {name}: {label}, {percent(c.progress)} — sent {number(c.sent)}, "
        f"delivered {number(c.delivered)}, read {number(c.read)}, "
        f"responded {number(c.responded)}, failed {number(c.failed)}"
    )


def card_blocks(card: CardData) -> list[Block]:
    blocks: list[Block] = [header(f"📣 {escape(card.name)}")]
    blocks.append(section(_status_line(card)))
    number_part = f" ({escape(card.display_number)})" if card.display_number else ""
    blocks.append(
        fields_section(
            [
                f"*Configuration*\n{escape(card.config_name)}{number_part}",
                f"*Template*\n`{escape(card.template_name)}` · "
                f"{escape(card.template_language)} · {escape(card.template_category.lower())}",
                f"*Agent*\n{escape(card.agent_name)}",
                f"*Recipients*\n{number(card.counts.total - card.counts.skipped)}",
                f"*Pace*\n{number(card.rate_mps)} msg/s · batches of {number(card.batch_size)}"
                f", {number(card.batch_pause_seconds)} s apart",
                f"*Created by*\n{mention(card.created_by)}",
            ]
        )
    )
    if card.status not in EDITABLE:
        blocks.extend(_metrics(card))
    if card.last_import and card.status in EDITABLE:
        blocks.append(context(f"Last import: {escape(card.last_import)}"))
    buttons = _buttons(card)
    if buttons:
        blocks.append(actions(buttons, block_id=ids.B_CARD_ACTIONS))
    blocks.append(context(*_footer(card)))
    return blocks


def _status_line(card: CardData) -> str:
    text = f"*Status:* {status_label(card.status)}"
    if card.status == S.SCHEDULED and card.scheduled_at is not None:
        utc = card.scheduled_at.strftime("%Y-%m-%d %H:%M UTC")
        text += f" for {slack_date(card.scheduled_at.timestamp(), utc)} ({utc})"
    if card.status_reason and card.status in REASON_SHOWN:
        text += f"\n_{card.status_reason}_"
    return text


def _metrics(card: CardData) -> list[Block]:
    c = card.counts
    line = (
        f"`{progress_bar(c.progress)}` *{percent(c.progress)}* · "
        f"{number(c.processed)} of {number(c.total)} processed"
    )
    if card.status == S.SENDING and card.eta_seconds is not None and c.pending:
        line += f" · ETA {duration_text(card.eta_seconds)}"
    blocks: list[Block] = [
        section(line),
        fields_section(
            [
                f"*Total*\n{number(c.total)}",
                f"*Sent*\n{number(c.sent)}",
                f"*Delivered*\n{number(c.delivered)}",
                f"*Read*\n{number(c.read)}",
                f"*Responded*\n{number(c.responded)}",
                f"*Failed*\n{number(c.failed)}",
                f"*Response rate*\n{percent(c.response_rate)} (responded ÷ total recipients)",
                f"*Opted out*\n{number(c.opted_out)}",
                f"*Skipped*\n{number(c.skipped)}",
            ]
        ),
        context(other_rates_text(c)),
    ]
    if card.failures:
        reasons = " · ".join(f"{escape(reason)} ({number(n)})" for reason, n in card.failures[:3])
        blocks.append(context(f"*Top failure reasons:* {reasons}"))
    return blocks


def other_rates_text(c: Counts) -> str:
    """The rates beside the seed's response rate, each named with what it divides."""
    return " · ".join(
        f"{label} {percent(c.rates()[key])} ({meaning})"
        for key, label, meaning in RATES
        if key != "response_rate"
    )


def _buttons(card: CardData) -> list[dict[str, object]]:
    bid = card.broadcast_id
    cancel = button(
        "Cancel",
        ids.CARD_CANCEL,
        bid,
        style="danger",
        confirm=confirm_dialog(
            "Cancel this broadcast?",
            f"*{escape(card.name)}* stops for good; recipients not reached yet are skipped.",
            "Cancel broadcast",
        ),
    )
    report = button("Report", ids.CARD_REPORT, bid)
    edit = button("Edit…", ids.CARD_EDIT, bid)
    duplicate = button("Duplicate", ids.CARD_DUPLICATE, bid)
    # A draft and a scheduled broadcast are still being prepared: recipients and a test.
    preparing = [
        button("Add contacts", ids.CARD_ADD_CONTACTS, bid),
        button("CSV template", ids.CARD_CSV_TEMPLATE, bid),
        button("Send test", ids.CARD_SEND_TEST, bid),
    ]
    if card.status == S.DRAFT:
        return [
            *preparing,
            button("Send…", ids.CARD_SEND, bid, style="primary"),
            button("Schedule…", ids.CARD_SCHEDULE, bid),
            edit,
            report,
            duplicate,
            cancel,
        ]
    if card.status == S.SCHEDULED:
        return [
            *preparing,
            button("Send now…", ids.CARD_SEND, bid, style="primary"),
            button("Reschedule…", ids.CARD_SCHEDULE, bid),
            button("Unschedule", ids.CARD_UNSCHEDULE, bid),
            edit,
            report,
            duplicate,
            cancel,
        ]
    if card.status == S.SENDING:
        return [button("Pause", ids.CARD_PAUSE, bid), report, cancel]
    if card.status == S.PAUSED:
        return [button("Resume", ids.CARD_RESUME, bid, style="primary"), report, cancel]
    return [
        report,
        button("Retry failed…", ids.CARD_RETRY, bid),
        duplicate,
    ]


def _footer(card: CardData) -> list[str]:
    parts = []
    if card.status in EDITABLE:
        parts.append(
            "📎 *Drop a CSV into this thread* to add recipients "
            "(`phone_number` plus one column per template parameter)."
        )
    elif card.status in READ_ONLY:
        parts.append(
            "This broadcast is read-only. *Report* uploads the per-recipient CSV; "
            "*Retry failed* makes a new draft of those who did not get it."
        )
    parts.append(f"ID `{card.broadcast_id[:8]}`")
    return parts
