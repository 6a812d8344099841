"""WhatsApp and Kapso errors mapped to what to do, in one table that every caller reads."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from broadcasts.durations import duration_text

DAY = 86400.0


class ErrorAction(StrEnum):
    RETRY_LATER = "retry_later"  # the number (or the API) is busy: back off, nobody failed
    RETRY_RECIPIENT = "retry_recipient"  # only this recipient must wait (pair rate, 24 h limit)
    FAIL_RECIPIENT = "fail_recipient"  # this recipient cannot get this message
    SKIP_RECIPIENT = "skip_recipient"  # opted out or suppressed: never sent, not a failure
    PAUSE_BROADCAST = "pause_broadcast"  # nobody will, until a human fixes something
    FAIL_BROADCAST = "fail_broadcast"  # nobody ever will from this number/credential
    UNKNOWN = "unknown"  # not in the table: retried, and a run of them pauses the broadcast


RETRYABLE = frozenset({ErrorAction.RETRY_LATER, ErrorAction.RETRY_RECIPIENT, ErrorAction.UNKNOWN})
STOPS_BROADCAST = frozenset({ErrorAction.PAUSE_BROADCAST, ErrorAction.FAIL_BROADCAST})


@dataclass(frozen=True)
class Classification:
    action: ErrorAction
    delay_seconds: float | None
    opt_out: bool = False
    summary: str = ""

    @property
    def retryable(self) -> bool:
        return self.action in RETRYABLE

    @property
    def stops_broadcast(self) -> bool:
        return self.action in STOPS_BROADCAST


def _c(
    action: ErrorAction, summary: str, delay: float | None = None, *, opt_out: bool = False
) -> Classification:
    return Classification(action, delay, opt_out=opt_out, summary=summary)


A = ErrorAction

# Every code on Meta's "WhatsApp error codes" page (synchronous API answers and asynchronous
# `failed` statuses alike), by what a broadcast should do about it.
CODES: dict[int, Classification] = {
    # Throttling and outages: back off, nobody failed.
    130429: _c(A.RETRY_LATER, "the number's throughput limit was reached", 1.0),
    4: _c(A.RETRY_LATER, "the app's API rate limit was reached", 60.0),
    80007: _c(A.RETRY_LATER, "the WhatsApp Business Account's rate limit was reached", 60.0),
    1: _c(A.RETRY_LATER, "the API had an unknown error (invalid request or server error)", 5.0),
    2: _c(A.RETRY_LATER, "the WhatsApp API service is temporarily unavailable", 5.0),
    131000: _c(A.RETRY_LATER, "WhatsApp had an unknown error", 5.0),
    131016: _c(A.RETRY_LATER, "the WhatsApp service is unavailable", 5.0),
    133004: _c(A.RETRY_LATER, "the WhatsApp server is temporarily unavailable", 5.0),
    131057: _c(A.RETRY_LATER, "the account is in maintenance (throughput upgrade)", 60.0),
    # One recipient must wait.
    131056: _c(A.RETRY_RECIPIENT, "too many messages to this recipient (pair rate limit)", 6.0),
    # This recipient cannot get this message.
    131026: _c(A.FAIL_RECIPIENT, "the message is undeliverable to this number (not on WhatsApp?)"),
    # Meta's per-user marketing limit: a resend must wait at least a day (the delay says so);
    # failing keeps the broadcast from staying open for 24 h over a few recipients.
    131049: _c(A.FAIL_RECIPIENT, "Meta chose not to deliver it (per-user marketing limit)", DAY),
    131050: _c(A.FAIL_RECIPIENT, "the recipient stopped marketing messages", opt_out=True),
    130472: _c(A.FAIL_RECIPIENT, "the recipient is part of a Meta marketing experiment"),
    130497: _c(A.FAIL_RECIPIENT, "the business may not message users in this recipient's country"),
    131021: _c(A.FAIL_RECIPIENT, "the recipient is the sending number itself"),
    131030: _c(A.FAIL_RECIPIENT, "the recipient is not in the test number's allowed list"),
    131047: _c(A.FAIL_RECIPIENT, "more than 24 hours passed since the customer last wrote"),
    131051: _c(A.FAIL_RECIPIENT, "the message type is not supported"),
    131052: _c(A.FAIL_RECIPIENT, "the media could not be downloaded"),
    137000: _c(A.FAIL_RECIPIENT, "the recipient's identity key changed (hash mismatch)"),
    100: _c(A.FAIL_RECIPIENT, "a parameter is invalid"),
    131008: _c(A.FAIL_RECIPIENT, "a required parameter is missing"),
    131009: _c(A.FAIL_RECIPIENT, "a parameter value is not valid"),
    132000: _c(A.FAIL_RECIPIENT, "the number of template parameters does not match the template"),
    132005: _c(A.FAIL_RECIPIENT, "the template text with its parameters is too long"),
    132007: _c(A.FAIL_RECIPIENT, "a template parameter breaks WhatsApp's character policy"),
    132008: _c(A.FAIL_RECIPIENT, "a template parameter is not allowed"),
    132012: _c(A.FAIL_RECIPIENT, "a template parameter has the wrong format"),
    # Fixable by a human: pause, keep every unsent recipient for the resume.
    3: _c(A.PAUSE_BROADCAST, "the app lacks the capability or permission for this call"),
    10: _c(A.PAUSE_BROADCAST, "the credential lacks permission for this number"),
    131005: _c(A.PAUSE_BROADCAST, "access denied: the permission was not granted or was removed"),
    131031: _c(A.PAUSE_BROADCAST, "the WhatsApp Business Account is locked"),
    131037: _c(A.PAUSE_BROADCAST, "the number's display name must be approved first"),
    131042: _c(A.PAUSE_BROADCAST, "the business has a payment problem"),
    131045: _c(A.PAUSE_BROADCAST, "the number's registration is incomplete (certificate)"),
    131048: _c(A.PAUSE_BROADCAST, "the number hit WhatsApp's spam rate limit"),
    131053: _c(A.PAUSE_BROADCAST, "the template's media could not be uploaded"),
    131062: _c(A.PAUSE_BROADCAST, "the number may not send this kind of message now"),
    131063: _c(A.PAUSE_BROADCAST, "the account may not send this message (account restriction)"),
    131064: _c(A.PAUSE_BROADCAST, "the account may not send this message (eligibility)"),
    133010: _c(A.PAUSE_BROADCAST, "the phone number is not registered on the WhatsApp API"),
    368: _c(A.PAUSE_BROADCAST, "the number is temporarily blocked for policy violations"),
    132001: _c(A.PAUSE_BROADCAST, "the template does not exist in that language or is unapproved"),
    132015: _c(A.PAUSE_BROADCAST, "the template is paused because of low quality"),
    132068: _c(A.PAUSE_BROADCAST, "the template's flow is blocked"),
    132069: _c(A.PAUSE_BROADCAST, "the template's flow is throttled (10 sends an hour)"),
    # Nobody will ever get it from this credential, number or template.
    0: _c(A.FAIL_BROADCAST, "the API credential could not be authenticated"),
    190: _c(A.FAIL_BROADCAST, "the API credential is expired or revoked"),
    132016: _c(A.FAIL_BROADCAST, "the template is disabled"),
}
# Codes 200-299 (API permission) read as one entry.
PERMISSION = _c(A.PAUSE_BROADCAST, "the app's API permission was not granted or was revoked")
# Graph's code 100 with subcode 33: the object (our phone number id) does not exist.
NUMBER_GONE = _c(A.FAIL_BROADCAST, "the phone number id does not exist (deleted or mistyped)")
# 135000 "generic user error" names no cause: left out on purpose, so it reads as a code we do
# not know.

# Kapso's own errors (string codes in its error body).
KAPSO_CODES: dict[str, Classification] = {
    "marketing_preference_stopped": _c(
        A.SKIP_RECIPIENT,
        "the contact stopped marketing messages (suppressed by Kapso)",
        opt_out=True,
    ),
}

NETWORK = _c(A.RETRY_LATER, "the WhatsApp API could not be reached (network error or timeout)", 2.0)
_SERVER = _c(A.RETRY_LATER, "the WhatsApp API had a server error", 5.0)
_THROTTLED = _c(A.RETRY_LATER, "the WhatsApp API asked us to slow down", 5.0)
_AUTH = _c(A.FAIL_BROADCAST, "the API credential was refused")
_UNKNOWN = _c(A.UNKNOWN, "WhatsApp answered with an error this bot does not know", 30.0)

# What an operator should do, for each action.
ADVICE: dict[ErrorAction, str] = {
    A.RETRY_LATER: "It will be retried automatically.",
    A.RETRY_RECIPIENT: "This recipient will be retried later.",
    A.FAIL_RECIPIENT: "This recipient cannot get the message; check the number and parameters.",
    A.SKIP_RECIPIENT: "This recipient is skipped and marked opted out.",
    A.PAUSE_BROADCAST: "Sending pauses until this is fixed; then resume.",
    A.FAIL_BROADCAST: "Sending stops for good: fix the credential or number, then start anew.",
    A.UNKNOWN: "It is retried; if it keeps coming the broadcast pauses for a human to look.",
}


def classify(
    code: int | None,
    http_status: int | None,
    *,
    subcode: int | None = None,
    kapso_code: str | None = None,
) -> Classification:
    """What to do about an error: by error code first, by HTTP status only without one."""
    if kapso_code is not None and kapso_code in KAPSO_CODES:
        return KAPSO_CODES[kapso_code]
    if code == 100 and subcode == 33:
        return NUMBER_GONE
    if code is not None:
        if code in CODES:
            return CODES[code]
        if 200 <= code <= 299:
            return PERMISSION
        return _UNKNOWN
    if http_status is None:
        return NETWORK
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


def resend_wait(code: int | None) -> float | None:
    """After a recipient failed with `code` (None: no code, the API could not be reached), how
    many seconds until sending it the same message again may succeed; None: it never will.

    What the sender retried, and what stopped the whole broadcast, said nothing against the
    recipient: at once. A recipient-level failure with a delay (131049) waits that long."""
    c = classify(code, None)
    if c.retryable or c.stops_broadcast:
        return 0.0
    return c.delay_seconds


def markdown_table() -> str:
    """The table as markdown, for docs/error-codes.md (kapso/errors_doc.py writes the page)."""
    order = list(ErrorAction)
    rows = sorted(CODES.items(), key=lambda kv: (order.index(kv[1].action), kv[0]))
    lines = ["| code | what it means | action | retried after |", "|---|---|---|---|"]

    def row(name: str, c: Classification) -> str:
        delay = duration_text(c.delay_seconds) if c.delay_seconds else ""
        delay = f"not before {delay}" if delay and not c.retryable else delay
        opt = " + opt-out" if c.opt_out else ""
        return f"| {name} | {c.summary} | `{c.action.value}`{opt} | {delay} |"

    lines += [row(str(code), c) for code, c in rows]
    lines.append(row("200–299", PERMISSION))
    lines.append(row("100 + subcode 33", NUMBER_GONE))
    lines += [row(f"Kapso `{name}`", c) for name, c in KAPSO_CODES.items()]
    lines.append(row("any other code (incl. 135000)", _UNKNOWN))
    lines.append(row("no code, HTTP 5xx / 408 / 429 / network", _SERVER))
    lines.append(row("no code, HTTP 401 / 403", _AUTH))
    return "\n".join(lines)


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
        subcode: int | None = None,
        kapso_code: str | None = None,
    ) -> None:
        self.code = code
        self.subcode = subcode
        self.kapso_code = kapso_code
        self.title = title
        self.details = details
        self.http_status = http_status
        self.config_name = config_name
        self.classification = classify(code, http_status, subcode=subcode, kapso_code=kapso_code)
        self.hint = hint
        super().__init__(self._sentence())

    def _sentence(self) -> str:
        where = f"configuration '{self.config_name}'" if self.config_name else "WhatsApp API"
        what = f"error {self.code}" if self.code is not None else "error"
        if self.kapso_code:
            what = f"error {self.kapso_code}"
        if self.subcode is not None:
            what += f"/{self.subcode}"
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
        return self.classification.retryable
