"""The App Home tab: recent broadcasts with their metrics."""

from __future__ import annotations

from typing import Any

from bot.slack.blocks.kit import Block, context, divider, header, section
from bot.slack.blocks.messages import BroadcastLine, line_text

MAX_HOME_BLOCKS = 100


def home_view(lines: list[BroadcastLine], *, can_send: bool) -> dict[str, Any]:
    blocks: list[Block] = [
        header("📣 WhatsApp broadcasts"),
        section(
            "Type `/broadcast new` in a channel to create one, drop a CSV of recipients into "
            "its card's thread, then press *Send…*."
        ),
    ]
    if not can_send:
        blocks.append(
            context(
                "Only broadcast admins can send, test-send, schedule, resume or cancel. Pause, "
                "recipients and reports are open to members of the card's channel."
            )
        )
    blocks.append(divider())
    if not lines:
        blocks.append(section("No broadcasts yet."))
    for line in lines[: MAX_HOME_BLOCKS - len(blocks) - 1]:
        blocks.append(section(line_text(line)))
    blocks.append(
        context("Response rate = responded ÷ total recipients. `/broadcast help` lists commands.")
    )
    return {"type": "home", "blocks": blocks}
