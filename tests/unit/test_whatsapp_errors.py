"""The one table that turns Meta error codes into what the sender does."""

from __future__ import annotations

import pytest

from kapso.errors import ErrorAction, WhatsAppError, classify


@pytest.mark.parametrize("code", [130429, 4, 80007, 131000, 131016, 133004, 2, 131057])
def test_throttle_and_outage_codes_retry_later_with_a_delay(code: int) -> None:
    result = classify(code, 400)
    assert result.action is ErrorAction.RETRY_LATER
    assert result.delay_seconds and result.delay_seconds > 0
    assert not result.pause_only


def test_pair_rate_retries_only_that_recipient() -> None:
    assert classify(131056, 400).action is ErrorAction.RETRY_RECIPIENT


@pytest.mark.parametrize(
    "code", [131026, 131049, 131050, 130472, 132000, 132012, 131008, 131009, 100]
)
def test_recipient_level_codes_fail_the_recipient(code: int) -> None:
    assert classify(code, 400).action is ErrorAction.FAIL_RECIPIENT


def test_only_131050_marks_an_opt_out() -> None:
    assert classify(131050, 400).opt_out
    assert not classify(131026, 400).opt_out


@pytest.mark.parametrize("code", [132001, 132015, 132016, 368, 190, 131048])
def test_template_policy_and_auth_codes_stop_the_broadcast(code: int) -> None:
    assert classify(code, 400).action is ErrorAction.STOP_BROADCAST


def test_spam_and_policy_blocks_pause_while_a_disabled_template_fails() -> None:
    assert classify(131048, 400).pause_only and classify(368, 400).pause_only
    assert not classify(132016, 400).pause_only and not classify(190, 401).pause_only


def test_the_code_wins_over_the_http_status() -> None:
    # Meta sends 130429 with HTTP 400: a status-only classifier would fail the recipient.
    assert classify(130429, 400).action is ErrorAction.RETRY_LATER
    assert classify(131026, 500).action is ErrorAction.FAIL_RECIPIENT


def test_without_a_code_the_http_status_decides() -> None:
    assert classify(None, 503).action is ErrorAction.RETRY_LATER
    assert classify(None, 429).action is ErrorAction.RETRY_LATER
    assert classify(None, 401).action is ErrorAction.STOP_BROADCAST
    assert classify(None, 400).action is ErrorAction.FAIL_RECIPIENT
    assert classify(999999, 400).action is ErrorAction.FAIL_RECIPIENT


def test_network_errors_and_timeouts_are_retryable() -> None:
    assert classify(None, None).action is ErrorAction.RETRY_LATER


def test_error_message_names_the_configuration_and_what_to_do() -> None:
    error = WhatsAppError(
        code=190,
        title="Authentication Error",
        details="Error validating access token",
        http_status=401,
        config_name="main",
        hint="Put a valid key in KAPSO_API_KEY and try again.",
    )
    text = str(error)
    assert "configuration 'main'" in text and "190" in text
    assert "KAPSO_API_KEY" in text
    assert error.classification.action is ErrorAction.STOP_BROADCAST
    assert not error.retryable
