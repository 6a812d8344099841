"""Enumerations of the domain, stored as their string values."""

from __future__ import annotations

from enum import StrEnum


class Provider(StrEnum):
    KAPSO = "kapso"
    META = "meta"
    SANDBOX = "sandbox"


class AgentKind(StrEnum):
    WEBHOOK = "webhook"
    SLACK = "slack"


class TemplateStatus(StrEnum):
    APPROVED = "APPROVED"
    PENDING = "PENDING"
    REJECTED = "REJECTED"
    PAUSED = "PAUSED"
    DISABLED = "DISABLED"
    IN_APPEAL = "IN_APPEAL"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    ARCHIVED = "ARCHIVED"
    DELETED = "DELETED"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, value: str | None) -> TemplateStatus:
        try:
            return cls((value or "").upper())
        except ValueError:
            return cls.UNKNOWN


class ParameterFormat(StrEnum):
    POSITIONAL = "POSITIONAL"
    NAMED = "NAMED"


class BroadcastStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class RecipientStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    SKIPPED = "skipped"


# Recipients not sent yet: waiting for their turn, or claimed by a sender right now.
UNSENT = frozenset({RecipientStatus.PENDING, RecipientStatus.SENDING})
# Recipients whose message WhatsApp accepted (and may since have delivered and shown as read).
REACHED = frozenset({RecipientStatus.SENT, RecipientStatus.DELIVERED, RecipientStatus.READ})


class ImportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
