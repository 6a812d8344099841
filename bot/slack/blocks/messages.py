"""Messages other than the card: help, lists, status, import summaries and thread notes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.slack.blocks.card import status_label
from bot.slack.blocks.kit import (
    MAX_MESSAGE_BLOCKS,
    SECTION_TEXT,
    Block,
    context,
    escape,
    mention,
    number,
    percent,
    section,
    slack_date,
)
from broadcasts.audit import AuditLine
from broadcasts.imports.phones import country_label
from broadcasts.metrics import Counts

HELP = """*`/broadcast` — WhatsApp broadcasts from Slack*
• `/broadcast new` — create a broadcast (name, WhatsApp number, approved template, channel)
• `/broadcast list` — recent broadcasts and their progress
• `/broadcast status <id or name>` — one broadcast's status and metrics
• `/broadcast pause <id>` · `/broadcast resume <id>` · `/broadcast cancel <id>` — control sending
• `/broadcast report <id>` — per-recipient CSV and a chart, in the card's thread (any status)
• `/broadcast edit <id>` — rename a draft, change its template, remove recipients or undo an import
• `/broadcast retry <id>` — a new draft with a finished broadcast's failed and unsent recipients
• `/broadcast duplicate <id>` — a new draft with the same number, template and recipients
• `/broadcast audit <id>` — who did what to a broadcast, and when
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
        f"{status_label(b.status)}{where}\n"
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
    countries = summary.get("accepted_by_country") or {}
    if countries:
        parts.append("By country: " + countries_text(countries) + ".")
    if reasons.get("phone_no_country_code"):
        parts.append(
            "Numbers without a country code are never guessed: write them as +&lt;country code&gt;"
            "&lt;number&gt; (or ask an admin to set PHONE_DEFAULT_REGION for national numbers)."
        )
    if int(summary.get("invalid", 0) or 0):
        parts.append("The attached error report lists every rejected row with its reason.")
    return "\n".join(parts)


def countries_text(counts: dict[str, Any], limit: int = 8) -> str:
    """`+44 GB 120 · +1 US 3 · 2 more countries 5`: recipients per calling code, most first."""
    ranked = sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))
    shown = [f"{escape(country_label(code))} {number(n)}" for code, n in ranked[:limit]]
    rest = ranked[limit:]
    if rest:
        shown.append(f"{len(rest)} more countries {number(sum(n for _, n in rest))}")
    return " · ".join(shown)


def audit_blocks(name: str, short_id: str, lines: list[AuditLine], total: int) -> list[Block]:
    """The audit trail of a broadcast, oldest first, in as few sections as Slack allows."""
    if not lines:
        return [section(f"*Audit of {escape(name)}*: nothing recorded yet.")]
    rows = []
    for line in lines:
        when = slack_date(line.at.timestamp(), f"{line.at:%Y-%m-%d %H:%M} UTC")
        who = (
            mention(line.actor)
            if line.via == "slack"
            else f"`{escape(line.actor)}` ({escape(line.via)})"
        )
        rows.append(f"• {when} — {who} {escape(line.summary)}")
    title = f"*Audit of {escape(name)}* `{escape(short_id)}` ({number(total)} entries)"
    blocks: list[Block] = [section(title)]
    chunk: list[str] = []
    for row in rows:
        if chunk and len("\n".join([*chunk, row])) > SECTION_TEXT - 100:
            blocks.append(section("\n".join(chunk)))
            chunk = []
        chunk.append(row)
    if chunk:
        blocks.append(section("\n".join(chunk)))
    if total > len(lines):
        blocks.insert(
            1,
            context(
                f"Showing the last {number(len(lines))}; the whole trail: "
                f"`broadcast-bot broadcasts audit {short_id}`."
            ),
        )
    return blocks[:MAX_MESSAGE_BLOCKS]
