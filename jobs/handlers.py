"""Jobs the engine queues and an adapter runs: jobs/ names the slot, the adapter fills it at start.

The engine must not import the Slack adapter (bot/ imports jobs/, never the reverse), yet a
broadcast event has to reach the card and a reply has to reach a Slack agent. So each such job
is a `Slot`; the adapter registers a module-level function for every slot when its process
starts (web, each worker role, the CLI), and a worker refuses to start with a slot left empty.

RQ stores a queued job under its function's dotted name (`module.function`) and imports it by
that name when a worker runs it: a registered function therefore keeps its module and name, or
jobs already queued under the old name stop running after an upgrade.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from rq.utils import import_attribute

Handler = Callable[..., Any]


class Slot(StrEnum):
    # (broadcast_id, kind, data): show a broadcast event (broadcast_events.EventKind) to people.
    BROADCAST_EVENT = "broadcast-event"
    # (delivery_id): hand an inbound reply to an agent of kind `slack`.
    SLACK_AGENT_DELIVERY = "slack-agent-delivery"


class MissingHandler(RuntimeError):
    """A slot was used, or a worker started, before the adapter registered its handlers."""


class Handlers:
    """Slot -> the function a worker runs for it."""

    def __init__(self) -> None:
        self._by_slot: dict[Slot, Handler] = {}
        self._former: dict[str, Handler] = {}

    def register(self, slot: Slot, func: Handler) -> None:
        """Fill `slot`; registering the same function again is harmless, another one is an error."""
        name = dotted_name(func)
        try:
            importable = import_attribute(name) is func
        except (AttributeError, ImportError, ValueError):
            importable = False
        if not importable:  # RQ could queue it but no worker could run it
            raise MissingHandler(f"{slot}: {name} is not a module-level function RQ can import")
        current = self._by_slot.get(slot)
        if current is not None and current is not func:
            raise MissingHandler(f"{slot} is already handled by {dotted_name(current)}")
        self._by_slot[slot] = func

    def get(self, slot: Slot) -> Handler:
        try:
            return self._by_slot[slot]
        except KeyError:
            raise MissingHandler(_missing_text([slot])) from None

    def register_former_name(self, name: str, func: Handler) -> None:
        """`func` moved: jobs an earlier release queued under the dotted `name` run it."""
        self._former[name] = func

    def former(self, name: str) -> Handler | None:
        """The function now behind a job queued under a former dotted name, if it moved."""
        return self._former.get(name)

    def check_complete(self) -> None:
        """Raise unless every slot has its handler (called when a worker starts)."""
        missing = [slot for slot in Slot if slot not in self._by_slot]
        if missing:
            raise MissingHandler(_missing_text(missing))


def dotted_name(func: Handler) -> str:
    """The name RQ stores a job under and imports it by."""
    return f"{func.__module__}.{func.__qualname__}"


def _missing_text(slots: list[Slot]) -> str:
    return (
        f"no handler registered for {', '.join(slots)}: this process was started without its "
        "adapter's handlers (start it with `broadcast-bot`, which registers them)"
    )


# The process's registry: filled once at start-up, read by the jobs that queue slot jobs.
registry = Handlers()
