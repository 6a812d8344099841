"""Logs in text and JSON: phone numbers and secrets never appear, in messages, args or extras."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from bot.ops.logs import Masker, configure_for_command, configure_logging, mask_phone
from broadcasts.errors import SettingsError
from jobs.settings import Settings

SECRETS = {
    "slack_bot_token": "xoxb-1111-2222-abcdefSECRET",
    "slack_signing_secret": "signing-secret-value-123",
    "kapso_api_key": "kapso-key-9f8e7d6c",
    "whatsapp_app_secret": "meta-app-secret-0a1b2c",
    "kapso_webhook_secret": "kapso-webhook-secret-77",
    "whatsapp_verify_token": "verify-token-4242",
}


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def _capture(log_format: str, environ: dict[str, str] | None = None) -> io.StringIO:
    stream = io.StringIO()
    settings = _settings(log_format=log_format, **SECRETS)
    configure_logging(settings, level="DEBUG", stream=stream, environ=environ or {})
    return stream


def _assert_clean(text: str) -> None:
    for secret in SECRETS.values():
        assert secret not in text
    for number in ("447400123456", "15550100300", "5215512345678"):
        assert number not in text


def test_phone_numbers_keep_their_country_code_and_last_two_digits() -> None:
    assert mask_phone("447400123456") == "+44••••••••56"
    assert mask_phone("15550100300") == "+1••••••••00"
    assert Masker()("to +5215512345678 and wa_id 447400123456") == (
        "to +52•••••••••78 and wa_id 44••••••••56"
    )


def test_ids_timestamps_and_words_with_digits_stay_readable() -> None:
    text = "phone_number_id 106540352242922 ts 1718000000.123456 wamid.HBgLMTU1NTAxMDAzMDA id 42"
    assert Masker()(text) == text


@pytest.mark.usefixtures("root_restored")
def test_text_logs_mask_numbers_and_secrets_in_message_args_and_extras() -> None:
    stream = _capture("text")
    log = logging.getLogger("tests.logs")
    log.info(
        "sending to %s with %s; signature secret %s",
        "+447400123456",
        SECRETS["slack_bot_token"],
        SECRETS["whatsapp_app_secret"],
        extra={"recipient": "wa_id 15550100300", "key": SECRETS["kapso_api_key"]},
    )
    log.warning("header Authorization: Bearer EAAGm0PX4ZCpsBAabcdefghijklmnop12345")
    try:
        raise ValueError(f"verify {SECRETS['whatsapp_verify_token']} for +5215512345678")
    except ValueError:
        log.exception("webhook %s failed", SECRETS["kapso_webhook_secret"])
    text = stream.getvalue()
    _assert_clean(text)
    assert "EAAGm0PX4ZCpsBAabcdefghijklmnop12345" not in text
    assert "sending to +44••••••••56 with *** ; signature secret ***".replace(" ;", ";") in text
    assert "recipient=wa_id 1••••••••00" in text
    assert "Bearer ***" in text
    assert "ValueError: verify *** for +52•••••••••78" in text


@pytest.mark.usefixtures("root_restored")
def test_json_logs_are_one_object_per_line_and_masked() -> None:
    stream = _capture("json", environ={"META_ACCESS_TOKEN_ACME": "EAA-acme-credential"})
    log = logging.getLogger("tests.logs")
    log.info("sent to %s", "+447400123456", extra={"broadcast_id": "b1", "attempt": 2})
    log.error(
        "db %s token %s creds %s",
        "postgresql://bot:hunter2pw@db:5432/prod",
        "xoxp-123-456-secret",
        "EAA-acme-credential",
        extra={"token": SECRETS["slack_signing_secret"]},
    )
    try:
        raise RuntimeError(SECRETS["kapso_api_key"])
    except RuntimeError:
        log.exception("boom")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    first, second, third = (json.loads(line) for line in lines)
    assert {"ts", "level", "logger", "message"} <= first.keys()
    assert first["level"] == "INFO" and first["logger"] == "tests.logs"
    assert first["message"] == "sent to +44••••••••56"
    assert first["broadcast_id"] == "b1" and first["attempt"] == 2
    assert second["message"] == "db postgresql://bot:***@db:5432/prod token xoxp-*** creds ***"
    assert second["token"] == "***"
    assert "RuntimeError: ***" in third["exc"]
    _assert_clean("\n".join(lines))
    assert "hunter2pw" not in stream.getvalue()


@pytest.mark.usefixtures("root_restored")
def test_one_off_commands_log_warnings_and_processes_log_at_log_level() -> None:
    settings = _settings()
    root = logging.getLogger()
    configure_for_command(lambda: settings, verbose=False, command="configs")
    assert root.level == logging.WARNING
    configure_for_command(lambda: settings, verbose=False, command="worker")
    assert root.level == logging.INFO
    explicit = _settings(log_level="ERROR")
    configure_for_command(lambda: explicit, verbose=False, command="configs")
    assert root.level == logging.ERROR
    configure_for_command(lambda: settings, verbose=True, command="configs")
    assert root.level == logging.DEBUG
    assert sum(type(h).__name__ == "_StderrHandler" for h in root.handlers) == 1

    def broken() -> Settings:
        raise SettingsError("PORT is invalid.")

    configure_for_command(broken, verbose=False, command="doctor")
    assert root.level == logging.WARNING
