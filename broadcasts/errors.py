"""Errors of the domain, each with a message a user can act on."""

from __future__ import annotations


class BroadcastBotError(Exception):
    """Base of every error we show to a user as one plain sentence."""


class SettingsError(BroadcastBotError):
    """A setting a command needs is missing or malformed."""


class NotFoundError(BroadcastBotError):
    """The thing asked for does not exist."""


class ValidationFailed(BroadcastBotError):
    """Input that cannot be accepted; `field` names where, when known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class IllegalTransition(BroadcastBotError):
    """A broadcast was asked to do something its status does not allow."""


class NotAuthorised(BroadcastBotError):
    """The user is not allowed to do this."""
