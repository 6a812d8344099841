"""Small Block Kit element builders that keep every text inside Slack's limits."""

from __future__ import annotations

import re
from typing import Any

# Slack's documented limits (Block Kit reference).
MAX_MESSAGE_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
SECTION_TEXT = 3000
SECTION_FIELD = 2000
SECTION_FIELDS = 10
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ACTIONS_ELEMENTS = 25
OPTION_TEXT = 75
OPTION_VALUE = 150
MAX_OPTIONS = 100
MODAL_TITLE = 24
MODAL_BUTTON = 24
PRIVATE_METADATA = 3000
INPUT_LABEL = 2000
PLACEHOLDER = 150

Block = dict[str, Any]


def escape(text: object) -> str:
    """User text made inert for Slack: `&`, `<` and `>` as entities, so it can carry no mention,
    link or channel ping (Slack parses those in every text it renders, and in message `text`)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Entities our own messages build: user, channel and user-group mentions by id.
_OUR_ENTITIES = re.compile(
    r"(<@[UW][A-Z0-9]{2,20}>|<#[CG][A-Z0-9]{2,20}>|<!subteam\^S[A-Z0-9]{2,20}>)"
)


def escape_keeping_mentions(text: object) -> str:
    """A sentence that mixes our id mentions with user text (an error naming a broadcast):
    escaped like `escape`, except `<@U…>`, `<#C…>` and `<!subteam^S…>` stay live. No broadcast
    ping or link survives; a user-typed id mention does, which notifies nobody in an ephemeral."""
    parts = _OUR_ENTITIES.split(str(text))
    return "".join(part if i % 2 else escape(part) for i, part in enumerate(parts))


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with an ellipsis when it was longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(text: str, limit: int = SECTION_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or " ", "emoji": True}


def md(text: str, limit: int = SECTION_TEXT) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": clip(text, limit) or " "}


def quote(text: str) -> str:
    """Every line of `text` as a mrkdwn block quote."""
    return "\n".join(">" + line for line in (text or " ").splitlines() or [" "])


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, HEADER_TEXT)}


def section(text: str, *, block_id: str | None = None, fields: list[str] | None = None) -> Block:
    block: Block = {"type": "section", "text": md(text)}
    if fields:
        block["fields"] = [md(f, SECTION_FIELD) for f in fields[:SECTION_FIELDS]]
    if block_id:
        block["block_id"] = block_id
    return block


def fields_section(fields: list[str]) -> Block:
    return {"type": "section", "fields": [md(f, SECTION_FIELD) for f in fields[:SECTION_FIELDS]]}


def context(*texts: str, block_id: str | None = None) -> Block:
    block: Block = {
        "type": "context",
        "elements": [md(t, SECTION_TEXT) for t in texts[:CONTEXT_ELEMENTS]],
    }
    if block_id:
        block["block_id"] = block_id
    return block


def divider() -> Block:
    return {"type": "divider"}


def button(
    text: str,
    action_id: str,
    value: str,
    *,
    style: str | None = None,
    confirm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": plain(text, BUTTON_TEXT),
        "action_id": action_id,
        "value": clip(value, BUTTON_VALUE),
    }
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


def confirm_dialog(title: str, text: str, yes: str, no: str = "Keep it") -> dict[str, Any]:
    return {
        "title": plain(title, 100),
        "text": md(text, 300),
        "confirm": plain(yes, 30),
        "deny": plain(no, 30),
        "style": "danger",
    }


def actions(elements: list[dict[str, Any]], *, block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": elements[:ACTIONS_ELEMENTS]}
    if block_id:
        block["block_id"] = block_id
    return block


def option(text: str, value: str, description: str | None = None) -> dict[str, Any]:
    opt: dict[str, Any] = {"text": plain(text, OPTION_TEXT), "value": clip(value, OPTION_VALUE)}
    if description:
        opt["description"] = plain(description, OPTION_TEXT)
    return opt


def input_block(
    block_id: str,
    label: str,
    element: dict[str, Any],
    *,
    optional: bool = False,
    hint: str | None = None,
    dispatch: bool = False,
) -> Block:
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "label": plain(label, INPUT_LABEL),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = plain(hint, INPUT_LABEL)
    if dispatch:
        block["dispatch_action"] = True
    return block


def modal(
    callback_id: str,
    title: str,
    blocks: list[Block],
    *,
    submit: str | None = None,
    close: str = "Cancel",
    private_metadata: str = "",
) -> dict[str, Any]:
    if len(private_metadata) > PRIVATE_METADATA:
        raise ValueError("private_metadata is longer than Slack allows")
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain(title, MODAL_TITLE),
        "close": plain(close, MODAL_BUTTON),
        "blocks": blocks[:MAX_MODAL_BLOCKS],
        "private_metadata": private_metadata,
    }
    if submit:
        view["submit"] = plain(submit, MODAL_BUTTON)
    return view


def number(value: float) -> str:
    """1234 -> '1,234'; 2.5 -> '2.5'."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def percent(ratio: float) -> str:
    return f"{ratio * 100:.1f}%"


def progress_bar(ratio: float, width: int = 20) -> str:
    ratio = min(max(ratio, 0.0), 1.0)
    filled = round(ratio * width)
    return "█" * filled + "░" * (width - filled)


def mention(actor_id: str | None) -> str:
    """A Slack user id as a mention; anything else (CLI user, system) as code."""
    if not actor_id:
        return "someone"
    if actor_id[:1] in ("U", "W") and actor_id.isalnum():
        return f"<@{actor_id}>"
    return f"`{escape(actor_id)}`"


def slack_date(ts: float, fallback: str) -> str:
    """A timestamp Slack shows in each reader's own timezone."""
    return f"<!date^{int(ts)}^{{date_short_pretty}} {{time}}|{fallback}>"
