"""Meta error codes mapped to what a sender should do, in one table."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorAction(StrEnum):
    RETRY_LATER = "retry_later"  # the number (or the API) is busy: back off, nobody failed
    RETRY_RECIPIENT = "retry_recipient"  # only this recipient must wait (pair rate)
    FAIL_RECIPIENT = "fail_recipient"  # this recipient cannot get this message
    STOP_BROADCAST = "stop_broadcast"  # nobody will: stop sending and tell a human


@dataclass(frozen=True)
class Classification:
    action: ErrorAction
    delay_seconds: float | None
    opt_out: bool = False
    pause_only: bool = False
    summary: str = ""


def _c(
    action: ErrorAction,
    summary: str,
    delay: float | None = None,
    *,
    opt_out: bool = False,
    pause_only: bool = False,
) -> Classification:
    return Classification(action, delay, opt_out=opt_out, pause_only=pause_only, summary=summary)


_RETRY, _RECIPIENT = ErrorAction.RETRY_LATER, ErrorAction.RETRY_RECIPIENT
_FAIL, _STOP = ErrorAction.FAIL_RECIPIENT, ErrorAction.STOP_BROADCAST

# Sources: Meta's Cloud API error codes (see /work/shared/reference/whatsapp.md).
CODES: dict[int, Classification] = {
    130429: _c(_RETRY, "the number's throughput limit was reached", 1.0),
    4: _c(_RETRY, "the app's API rate limit was reached", 60.0),
    80007: _c(_RETRY, "the WhatsApp Business Account's rate limit was reached", 60.0),
    131000: _c(_RETRY, "WhatsApp had an unknown error", 5.0),
    131016: _c(_RETRY, "the WhatsApp service is unavailable", 5.0),
    133004: _c(_RETRY, "the WhatsApp server is temporarily unavailable", 5.0),
    2: _c(_RETRY, "the WhatsApp API service is temporarily unavailable", 5.0),
    131057: _c(_RETRY, "the account is in maintenance (throughput upgrade)", 60.0),
    131056: _c(_RECIPIENT, "too many messages to this recipient (pair rate limit)", 6.0),
    131026: _c(_FAIL, "the message is undeliverable to this number (not on WhatsApp?)"),
    131049: _c(_FAIL, "Meta chose not to deliver it (per-user marketing limit); retry after 24 h"),
    131050: _c(_FAIL, "the recipient stopped marketing messages", opt_out=True),
    130472: _c(_FAIL, "the recipient is part of a Meta marketing experiment"),
    132000: _c(_FAIL, "the number of template parameters does not match the template"),
    132012: _c(_FAIL, "a template parameter has the wrong format"),
    131008: _c(_FAIL, "a required parameter is missing"),
    131009: _c(_FAIL, "a parameter value is not valid"),
    100: _c(_FAIL, "a parameter is invalid"),
    131047: _c(_FAIL, "more than 24 hours passed since the customer last wrote (use a template)"),
    132001: _c(_STOP, "the template does not exist in that language or is not approved"),
    132015: _c(_STOP, "the template is paused because of low quality"),
    132016: _c(_STOP, "the template is disabled"),
    131048: _c(_STOP, "the number hit WhatsApp's spam rate limit", pause_only=True),
    368: _c(_STOP, "the number is temporarily blocked for policy violations", pause_only=True),
    190: _c(_STOP, "the API credential is expired or revoked"),
    10: _c(_STOP, "the credential lacks permission for this number"),
    131031: _c(_STOP, "the WhatsApp Business Account is locked"),
    131042: _c(_STOP, "the business has a payment problem", pause_only=True),
    133010: _c(_STOP, "the phone number is not registered on the WhatsApp API"),
}

NETWORK = _c(_RETRY, "the WhatsApp API could not be reached (network error or timeout)", 2.0)
_SERVER = _c(_RETRY, "the WhatsApp API had a server error", 5.0)
_THROTTLED = _c(_RETRY, "the WhatsApp API asked us to slow down", 5.0)
_AUTH = _c(_STOP, "the API credential was refused")
_UNKNOWN = _c(_FAIL, "WhatsApp rejected the message")

# What an operator should do, for the codes that need one.
ADVICE: dict[ErrorAction, str] = {
    _RETRY: "It will be retried automatically.",
    _RECIPIENT: "This recipient will be retried later.",
    _FAIL: "This recipient cannot get the message; check the number and parameters.",
    _STOP: "Sending stops until this is fixed.",
}


def classify(code: int | None, http_status: int | None) -> Classification:
    """What to do about an error: by Meta error code first, by HTTP status only without one."""
    if code is not None and code in CODES:
        return CODES[code]
    if http_status is None:
        return NETWORK if code is None else _UNKNOWN
    if http_status >= 500:
        return _SERVER
    if http_status in (401, 403):
        return _AUTH
    if http_status in (408, 429):
        return _THROTTLED
    if http_status < 400:
        # A success status with a body we could not read: nothing was confirmed, try again.
        return _SERVER
    return _UNKNOWN


class WhatsAppError(Exception):
    """A failed WhatsApp API call, classified; `str()` says where and what to do."""

    def __init__(
        self,
        *,
        code: int | None,
        title: str,
        details: str | None = None,
        http_status: int | None = None,
        config_name: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.code = code
        self.title = title
        self.details = details
        self.http_status = http_status
        self.config_name = config_name
        self.classification = classify(code, http_status)
        self.hint = hint
        super().__init__(self._sentence())

    def _sentence(self) -> str:
        where = f"configuration '{self.config_name}'" if self.config_name else "WhatsApp API"
        what = f"error {self.code}" if self.code is not None else "error"
        if self.http_status is not None:
            what += f" (HTTP {self.http_status})"
        detail = f" {self.title.rstrip('.')}."
        if self.details and self.details not in self.title:
            detail += f" {self.details.rstrip('.')}."
        advice = self.hint or ADVICE[self.classification.action]
        return f"WhatsApp {what} on {where}: {self.classification.summary}.{detail} {advice}"

    @property
    def action(self) -> ErrorAction:
        return self.classification.action

    @property
    def retryable(self) -> bool:
        return self.classification.action in (_RETRY, _RECIPIENT)
