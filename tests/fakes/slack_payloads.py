"""Interaction payloads shaped as Slack sends them: view submissions, block actions, file shares."""

from __future__ import annotations

from typing import Any

from tests.fakes.slack_api import TEAM_ID


def submission(
    view: dict[str, Any], values: dict[str, dict[str, Any]], user: str = "U0ANA"
) -> dict[str, Any]:
    """A view_submission of `view` with state `values` ({block_id: {action_id: {...}}})."""
    return {
        "type": "view_submission",
        "user": {"id": user, "team_id": TEAM_ID},
        "view": {**view, "state": {"values": values}},
        "trigger_id": "trigger-submit",
    }


def text(action_id: str, value: str | None) -> dict[str, Any]:
    return {action_id: {"type": "plain_text_input", "value": value}}


def number(action_id: str, value: str | None) -> dict[str, Any]:
    return {action_id: {"type": "number_input", "value": value}}


def select(action_id: str, value: str | None) -> dict[str, Any]:
    option = {"value": value, "text": {"type": "plain_text", "text": value}} if value else None
    return {action_id: {"type": "static_select", "selected_option": option}}


def conversation(action_id: str, channel: str) -> dict[str, Any]:
    return {action_id: {"type": "conversations_select", "selected_conversation": channel}}


def button(
    action_id: str,
    value: str,
    *,
    user: str = "U0ANA",
    channel: str = "C0CAMP",
    message_ts: str | None = None,
) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": user, "team_id": TEAM_ID},
        "channel": {"id": channel},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
        "trigger_id": "trigger-button",
        "actions": [
            {"type": "button", "action_id": action_id, "block_id": "card_actions", "value": value}
        ],
    }


def block_suggestion(action_id: str, view: dict[str, Any], value: str = "") -> dict[str, Any]:
    return {
        "type": "block_suggestion",
        "user": {"id": "U0ANA", "team_id": TEAM_ID},
        "action_id": action_id,
        "block_id": "x",
        "value": value,
        "view": view,
    }


def file_share(
    file: dict[str, Any], *, channel: str, thread_ts: str, user: str = "U0ANA"
) -> dict[str, Any]:
    return {
        "type": "message",
        "subtype": "file_share",
        "user": user,
        "channel": channel,
        "channel_type": "channel",
        "ts": "1800000000.000100",
        "thread_ts": thread_ts,
        "text": "",
        "files": [file],
    }
