"""manifest.yml validates against the rules of Slack's manifest schema (v1) and fits the app.

The rules below restate, for the sections we use, slackapi/manifest-schema's
schemas/manifest.schema.1.0.0.json: allowed field names, required fields, lengths and patterns.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bot.slack.listeners.commands import COMMAND

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"
URL = {"type": "string", "pattern": r"^https?:\/\/", "maxLength": 3500}
SCOPES = {"type": "array", "items": {"type": "string", "maxLength": 50}, "maxItems": 255}
EVENTS = {
    "type": "array",
    "items": {"type": "string", "maxLength": 50},
    "maxItems": 100,
    "uniqueItems": True,
}


def obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


SCHEMA = obj(
    {
        "_metadata": obj(
            {
                "major_version": {"type": "integer"},
                "minor_version": {"type": "integer"},
                "schema_version": {"type": "integer"},
                "min_version": {"type": "integer"},
            }
        ),
        "display_information": obj(
            {
                "name": {"type": "string", "minLength": 1, "maxLength": 35},
                "description": {"type": "string", "minLength": 1, "maxLength": 140},
                "background_color": {
                    "type": "string",
                    "minLength": 4,
                    "maxLength": 7,
                    "pattern": r"^#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?$",
                },
                "long_description": {"type": "string", "minLength": 175, "maxLength": 4000},
            },
            ("name",),
        ),
        "features": obj(
            {
                "app_home": obj(
                    {
                        "home_tab_enabled": {"type": "boolean"},
                        "messages_tab_enabled": {"type": "boolean"},
                        "messages_tab_read_only_enabled": {"type": "boolean"},
                    }
                ),
                "bot_user": obj(
                    {
                        "display_name": {"type": "string", "minLength": 1, "maxLength": 80},
                        "always_online": {"type": "boolean"},
                    },
                    ("display_name",),
                ),
                "slash_commands": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 50,
                    "items": obj(
                        {
                            "command": {
                                "type": "string",
                                "minLength": 2,
                                "maxLength": 32,
                                "pattern": r"^\/",
                            },
                            "url": {**URL, "maxLength": 3000},
                            "description": {"type": "string", "minLength": 1, "maxLength": 2000},
                            "usage_hint": {"type": "string", "minLength": 1, "maxLength": 1000},
                            "should_escape": {"type": "boolean"},
                        },
                        ("command", "description"),
                    ),
                },
            }
        ),
        "oauth_config": obj(
            {
                "scopes": obj({"bot": SCOPES, "user": SCOPES}),
                "redirect_urls": {"type": "array", "items": {"type": "string", "maxLength": 2500}},
                "token_management_enabled": {"type": "boolean"},
            }
        ),
        "settings": obj(
            {
                "event_subscriptions": obj(
                    {"request_url": URL, "bot_events": EVENTS, "user_events": EVENTS}
                ),
                "interactivity": obj(
                    {
                        "is_enabled": {"type": "boolean"},
                        "request_url": URL,
                        "message_menu_options_url": URL,
                    },
                    ("is_enabled",),
                ),
                "org_deploy_enabled": {"type": "boolean"},
                "socket_mode_enabled": {"type": "boolean"},
                "token_rotation_enabled": {"type": "boolean"},
            }
        ),
    },
    ("display_information",),
)


def violations(value: Any, rule: dict[str, Any], path: str = "$") -> list[str]:
    """A minimal JSON-schema check: type, properties (no extras), required, lengths, patterns."""
    kind = rule["type"]
    python = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int}[kind]
    if not isinstance(value, python) or (kind == "integer" and isinstance(value, bool)):
        return [f"{path}: expected {kind}"]
    found: list[str] = []
    if kind == "object":
        for key in rule.get("required", ()):
            if key not in value:
                found.append(f"{path}: missing {key}")
        for key, item in value.items():
            if key not in rule["properties"]:
                found.append(f"{path}: unknown field {key}")
            else:
                found += violations(item, rule["properties"][key], f"{path}.{key}")
    if kind == "array":
        if not rule.get("minItems", 0) <= len(value) <= rule.get("maxItems", 10**9):
            found.append(f"{path}: {len(value)} items")
        if rule.get("uniqueItems") and len(set(map(str, value))) != len(value):
            found.append(f"{path}: duplicate items")
        for i, item in enumerate(value):
            found += violations(item, rule["items"], f"{path}[{i}]")
    if kind == "string":
        if not rule.get("minLength", 0) <= len(value) <= rule.get("maxLength", 10**9):
            found.append(f"{path}: length {len(value)}")
        if "pattern" in rule and not re.search(rule["pattern"], value):
            found.append(f"{path}: does not match {rule['pattern']}")
    return found


def manifest() -> dict[str, Any]:
    return dict(yaml.safe_load(MANIFEST.read_text()))


def test_the_manifest_validates_against_the_schema_rules() -> None:
    assert violations(manifest(), SCHEMA) == []


def test_the_validator_catches_what_slack_would_refuse() -> None:
    bad = manifest()
    bad["display_information"]["name"] = "A name far too long for Slack's app directory"
    bad["features"]["slash_commands"][0]["command"] = "broadcast"
    bad["settings"]["surprise"] = True
    found = violations(bad, SCHEMA)
    assert "$.display_information.name: length 45" in found
    assert any("command: does not match" in f for f in found)
    assert "$.settings: unknown field surprise" in found


def test_every_request_url_is_our_single_slack_endpoint() -> None:
    m = manifest()
    urls = [
        m["features"]["slash_commands"][0]["url"],
        m["settings"]["event_subscriptions"]["request_url"],
        m["settings"]["interactivity"]["request_url"],
        m["settings"]["interactivity"]["message_menu_options_url"],
    ]
    assert all(u.endswith("/slack/events") for u in urls)


def test_the_manifest_declares_what_the_app_uses() -> None:
    m = manifest()
    assert [c["command"] for c in m["features"]["slash_commands"]] == [COMMAND]
    events = set(m["settings"]["event_subscriptions"]["bot_events"])
    assert {"message.channels", "message.groups", "app_home_opened"} <= events
    scopes = set(m["oauth_config"]["scopes"]["bot"])
    needed = {"commands", "chat:write", "files:read", "files:write", "channels:history"}
    assert needed | {"groups:history", "users:read", "usergroups:read"} <= scopes
    assert m["features"]["app_home"]["home_tab_enabled"] is True
