"""Messages other than the card: help, lists, status, import summaries and thread notes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.blocks.card import STATUS_LABEL
from bot.blocks.kit import (
    MAX_MESSAGE_BLOCKS,
    Block,
    context,
    escape,
    number,
    percent,
    section,
)
from broadcasts.metrics import Counts

HELP = """*`/broadcast` — WhatsApp broadcasts from Slack*
• `/broadcast new` — create a broadcast (name, WhatsApp number, approved template, channel)
• `/broadcast list` — recent broadcasts and their progress
• `/broadcast status <id or name>` — one broadcast's status and metrics
• `/broadcast pause <id>` · `/broadcast resume <id>` · `/broadcast cancel <id>` — control sending
• `/broadcast report <id>` — per-recipient CSV and a chart, in the card's thread
• `/broadcast templates [sync]` — approved templates per number (`sync` refreshes them)
• `/broadcast help` — this message
Recipients: drop a CSV (`phone_number` + one column per template parameter) into the card's \
thread, or press *Add contacts* on the card."""


@dataclass(frozen=True)
class BroadcastLine:
    broadcast_id: str
    name: str
    status: str
    counts: Counts
    channel_id: str | None = None


def line_text(b: BroadcastLine) -> str:
    c = b.counts
    where = f" in <#{b.channel_id}>" if b.channel_id else ""
    return (
        f"*{escape(b.name)}* `{b.broadcast_id[:8]}` — "
        f"{STATUS_LABEL.get(b.status, b.status)}{where}\n"
        f"{number(c.total)} recipients · {percent(c.progress)} · sent {number(c.sent)} · "
        f"delivered {number(c.delivered)} · read {number(c.read)} · "
        f"responded {number(c.responded)} · failed {number(c.failed)} · "
        f"response rate {percent(c.response_rate)}"
    )


def broadcast_list(lines: list[BroadcastLine]) -> list[Block]:
    if not lines:
        return [section("No broadcasts yet. `/broadcast new` creates one.")]
    blocks: list[Block] = [section(f"*Recent broadcasts* ({len(lines)})")]
    blocks += [section(line_text(b)) for b in lines[: MAX_MESSAGE_BLOCKS - 1]]
    return blocks


def template_list(by_config: list[tuple[str, list[tuple[str, str, str, str]]]]) -> list[Block]:
    """Templates per configuration: (config, [(name, language, category, status)])."""
    if not by_config:
        return [section("No WhatsApp configuration yet: `broadcast-bot configs add` creates one.")]
    blocks: list[Block] = []
    for config, templates in by_config[: MAX_MESSAGE_BLOCKS - 1]:
        rows = [
            f"• `{escape(name)}` ({escape(language)}, {escape(category.lower())}) — "
            f"{escape(status)}"
            for name, language, category, status in templates
        ] or ["no templates synced yet: `/broadcast templates sync`"]
        blocks.append(section(f"*{escape(config)}*\n" + "\n".join(rows)))
    blocks.append(context("Only APPROVED templates can be broadcast."))
    return blocks


def import_summary(summary: dict[str, Any], filename: str, by: str) -> str:
    """The thread reply after a CSV import."""
    accepted = int(summary.get("accepted", 0))
    read = int(summary.get("rows_read", summary.get("rows", 0)))
    parts = [
        f"📥 {by} imported `{escape(filename)}`: *{number(accepted)} recipients added* from "
        f"{number(read)} rows."
    ]
    details = []
    for key, label in (
        ("invalid", "invalid"),
        ("duplicates", "duplicate rows"),
        ("already_present", "already in the broadcast"),
        ("opted_out", "opted out"),
        ("test_excluded", "test contacts left out"),
    ):
        value = int(summary.get(key, 0) or 0)
        if value:
            details.append(f"{number(value)} {label}")
    if details:
        parts.append("Skipped: " + ", ".join(details) + ".")
    reasons = summary.get("invalid_by_reason") or {}
    if reasons:
        top = sorted(reasons.items(), key=lambda kv: -int(kv[1]))[:5]
        parts.append(
            "Why: " + "; ".join(f"{escape(reason)} ({number(int(n))})" for reason, n in top) + "."
        )
    if int(summary.get("invalid", 0) or 0):
        parts.append("The attached error report lists every rejected row with its reason.")
    return "\n".join(parts)
