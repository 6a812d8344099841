"""Errors of the domain, each with a message a user can act on."""

from __future__ import annotations

from enum import StrEnum


class NextStep(StrEnum):
    """What the user can do about an error, named as an action: each adapter (Slack, the CLI)
    says how to do it in its own terms, so the domain never names an adapter's command."""

    ASSIGN_AGENT = "assign_agent"
    DROP_UNFIT = "drop_unfit"
    LIST_BROADCASTS = "list_broadcasts"
    LIST_CONTACTS = "list_contacts"
    LIST_IMPORTS = "list_imports"
    SYNC_TEMPLATES = "sync_templates"


class BroadcastBotError(Exception):
    """Base of every error we show to a user as one plain sentence; `next_step` names the action
    that helps, when there is one, and `subject` what it acts on (a broadcast id, a
    configuration name), so an adapter can spell the step out in full."""

    def __init__(
        self, message: str = "", *, next_step: NextStep | None = None, subject: str = ""
    ) -> None:
        super().__init__(message)
        self.next_step = next_step
        self.subject = subject


class SettingsError(BroadcastBotError):
    """A setting a command needs is missing or malformed."""


class NotFoundError(BroadcastBotError):
    """The thing asked for does not exist."""


class ValidationFailed(BroadcastBotError):
    """Input that cannot be accepted; `field` names where, when known."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        next_step: NextStep | None = None,
        subject: str = "",
    ) -> None:
        super().__init__(message, next_step=next_step, subject=subject)
        self.field = field


class IllegalTransition(BroadcastBotError):
    """A broadcast was asked to do something its status does not allow."""


class NotAuthorised(BroadcastBotError):
    """The user is not allowed to do this."""
