"""The `biz_opaque_callback_data` we put on every send, so a status webhook finds its recipient
even when the send's response (and so its wamid) was lost."""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "bb1"


@dataclass(frozen=True)
class CallbackRef:
    broadcast_id: str
    recipient_id: int | None  # None for a test send (outside the broadcast's metrics)


def encode(broadcast_id: str, recipient_id: int | None) -> str:
    return f"{PREFIX}:{broadcast_id}:{recipient_id if recipient_id is not None else 'test'}"


def decode(value: str | None) -> CallbackRef | None:
    """The reference in a callback string of ours, or None for anything else."""
    if not value:
        return None
    parts = value.split(":")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1]:
        return None
    if parts[2] == "test":
        return CallbackRef(parts[1], None)
    if not parts[2].isdigit():
        return None
    return CallbackRef(parts[1], int(parts[2]))
