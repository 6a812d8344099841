"""The one table that turns WhatsApp and Kapso error codes into what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from kapso import errors_doc
from kapso.client import ApiTarget, _api_error
from kapso.errors import (
    CODES,
    DAY,
    ErrorAction,
    WhatsAppError,
    classify,
    markdown_table,
    resend_wait,
)

A = ErrorAction

# Every code on Meta's "WhatsApp error codes" page, by the action the issue and the page call for.
DOCUMENTED: dict[int, ErrorAction] = {
    0: A.FAIL_BROADCAST,
    1: A.RETRY_LATER,
    2: A.RETRY_LATER,
    3: A.PAUSE_BROADCAST,
    4: A.RETRY_LATER,
    10: A.PAUSE_BROADCAST,
    100: A.FAIL_RECIPIENT,
    190: A.FAIL_BROADCAST,
    368: A.PAUSE_BROADCAST,
    80007: A.RETRY_LATER,
    130429: A.RETRY_LATER,
    130472: A.FAIL_RECIPIENT,
    130497: A.FAIL_RECIPIENT,
    131000: A.RETRY_LATER,
    131005: A.PAUSE_BROADCAST,
    131008: A.FAIL_RECIPIENT,
    131009: A.FAIL_RECIPIENT,
    131016: A.RETRY_LATER,
    131021: A.FAIL_RECIPIENT,
    131026: A.FAIL_RECIPIENT,
    131030: A.FAIL_RECIPIENT,
    131031: A.PAUSE_BROADCAST,
    131037: A.PAUSE_BROADCAST,
    131042: A.PAUSE_BROADCAST,
    131045: A.PAUSE_BROADCAST,
    131047: A.FAIL_RECIPIENT,
    131048: A.PAUSE_BROADCAST,
    131049: A.FAIL_RECIPIENT,
    131050: A.FAIL_RECIPIENT,
    131051: A.FAIL_RECIPIENT,
    131052: A.FAIL_RECIPIENT,
    131053: A.PAUSE_BROADCAST,
    131056: A.RETRY_RECIPIENT,
    131057: A.RETRY_LATER,
    131062: A.PAUSE_BROADCAST,
    131063: A.PAUSE_BROADCAST,
    131064: A.PAUSE_BROADCAST,
    132000: A.FAIL_RECIPIENT,
    132001: A.PAUSE_BROADCAST,
    132005: A.FAIL_RECIPIENT,
    132007: A.FAIL_RECIPIENT,
    132008: A.FAIL_RECIPIENT,
    132012: A.FAIL_RECIPIENT,
    132015: A.PAUSE_BROADCAST,
    132016: A.FAIL_BROADCAST,
    132068: A.PAUSE_BROADCAST,
    132069: A.PAUSE_BROADCAST,
    133004: A.RETRY_LATER,
    133010: A.PAUSE_BROADCAST,
    137000: A.FAIL_RECIPIENT,
}


@pytest.mark.parametrize(("code", "action"), sorted(DOCUMENTED.items()))
def test_every_documented_code_has_its_action(code: int, action: ErrorAction) -> None:
    # Meta sends nearly all of them with HTTP 400: the code decides, never the status.
    assert classify(code, 400).action is action
    assert classify(code, None).action is action  # the same in an asynchronous `failed` status


def test_the_table_holds_no_code_without_a_documented_action() -> None:
    assert set(CODES) == set(DOCUMENTED)


@pytest.mark.parametrize("code", [200, 250, 299])
def test_api_permission_codes_pause(code: int) -> None:
    assert classify(code, 403).action is A.PAUSE_BROADCAST


def test_a_wrong_phone_number_id_fails_the_broadcast_not_recipients() -> None:
    assert classify(100, 400, subcode=33).action is A.FAIL_BROADCAST
    assert classify(100, 400).action is A.FAIL_RECIPIENT


def test_code_1_on_http_400_is_retried() -> None:
    assert classify(1, 400).retryable


def test_retry_delays_follow_the_platform() -> None:
    assert classify(131049, 400).delay_seconds == 86400  # a resend: never before 24 h
    assert classify(131056, 400).delay_seconds == 6.0  # pair rate: one message per ~6 s
    assert classify(130429, 400).delay_seconds == 1.0


def test_kapso_marketing_stop_is_a_suppression_not_a_failure() -> None:
    result = classify(None, 422, kapso_code="marketing_preference_stopped")
    assert result.action is A.SKIP_RECIPIENT and result.opt_out


def test_only_opt_out_codes_mark_an_opt_out() -> None:
    assert classify(131050, 400).opt_out
    assert not classify(131026, 400).opt_out


@pytest.mark.parametrize("code", [999999, 135000])
def test_an_unknown_code_is_never_a_silent_recipient_failure(code: int) -> None:
    result = classify(code, 400)
    assert result.action is A.UNKNOWN and result.retryable


def test_without_a_code_the_http_status_decides() -> None:
    assert classify(None, 503).action is A.RETRY_LATER
    assert classify(None, 429).action is A.RETRY_LATER
    assert classify(None, 401).action is A.FAIL_BROADCAST
    assert classify(None, 400).action is A.UNKNOWN
    assert classify(None, None).action is A.RETRY_LATER  # network error or timeout


@pytest.mark.parametrize("code", sorted(CODES))
def test_a_retry_of_a_broadcast_takes_what_the_table_says_a_resend_can_fix(code: int) -> None:
    """Codes the sender retries or that stop the whole broadcast say nothing against the
    recipient: a retry takes them at once; a recipient-level failure only after its delay
    (131049: a day), or never."""
    action = CODES[code].action
    if action in (A.RETRY_LATER, A.RETRY_RECIPIENT, A.PAUSE_BROADCAST, A.FAIL_BROADCAST):
        assert resend_wait(code) == 0.0
    elif code == 131049:
        assert resend_wait(code) == DAY
    else:
        assert resend_wait(code) is None


def test_a_failure_without_a_code_or_with_an_unknown_one_can_be_resent() -> None:
    assert resend_wait(None) == 0.0  # the API could not be reached until attempts ran out
    assert resend_wait(135000) == 0.0  # the sender retries a code it does not know
    assert resend_wait(250) == 0.0  # API permission: pauses until an operator fixes it


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
    assert error.action is A.FAIL_BROADCAST
    assert not error.retryable


def test_the_error_codes_page_is_what_the_table_generates() -> None:
    page = (Path(__file__).parents[2] / "docs" / "error-codes.md").read_text(encoding="utf-8")
    assert page == errors_doc.render(), "docs/error-codes.md is out of date: run `make docs`"
    assert markdown_table() in page


def test_the_error_codes_check_fails_on_a_stale_page(tmp_path: Path) -> None:
    page = tmp_path / "error-codes.md"
    assert errors_doc.main(["--page", str(page)]) == 0
    assert errors_doc.main(["--check", "--page", str(page)]) == 0
    page.write_text(page.read_text(encoding="utf-8").replace("| 131050 |", "| 131051 |"))
    assert errors_doc.main(["--check", "--page", str(page)]) == 1


def test_every_error_action_is_explained_on_the_page() -> None:
    page = errors_doc.render()
    for action in ErrorAction:
        assert f"- `{action.value}` — " in page


def _target() -> ApiTarget:
    return ApiTarget("main", "meta", "http://127.0.0.1:9", "100200300", "900800700", "x", "TOKEN")


def test_the_client_reads_metas_subcode_and_kapsos_string_codes() -> None:
    wrong_number = {
        "error": {
            "message": "Unsupported post request. Object with ID '123' does not exist",
            "type": "GraphMethodException",
            "code": 100,
            "error_subcode": 33,
            "fbtrace_id": "A1",
        }
    }
    error = _api_error(_target(), 400, wrong_number)
    assert (error.code, error.subcode, error.action) == (100, 33, A.FAIL_BROADCAST)
    for body in (
        {"error": {"code": "marketing_preference_stopped", "message": "Contact stopped marketing"}},
        {"error": "marketing_preference_stopped", "message": "Contact stopped marketing"},
    ):
        error = _api_error(_target(), 422, body)
        assert error.action is A.SKIP_RECIPIENT and "marketing" in str(error)
    oauth = {"error": {"message": "(#131063) Blocked", "type": "OAuthException", "code": 131063}}
    assert _api_error(_target(), 400, oauth).kapso_code is None
