"""The broadcast status machine: the only place that says which transitions exist."""

from __future__ import annotations

from enum import StrEnum

from broadcasts.enums import BroadcastStatus as S
from broadcasts.errors import IllegalTransition


class Action(StrEnum):
    SCHEDULE = "schedule"
    UNSCHEDULE = "unschedule"
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    COMPLETE = "complete"
    CANCEL = "cancel"
    FAIL = "fail"


# (action, from) -> to. Cancelling a sending broadcast is allowed: it stops sending first.
TRANSITIONS: dict[tuple[Action, S], S] = {
    (Action.SCHEDULE, S.DRAFT): S.SCHEDULED,
    (Action.SCHEDULE, S.SCHEDULED): S.SCHEDULED,
    (Action.UNSCHEDULE, S.SCHEDULED): S.DRAFT,
    (Action.START, S.DRAFT): S.SENDING,
    (Action.START, S.SCHEDULED): S.SENDING,
    (Action.PAUSE, S.SENDING): S.PAUSED,
    (Action.RESUME, S.PAUSED): S.SENDING,
    (Action.COMPLETE, S.SENDING): S.COMPLETED,
    (Action.CANCEL, S.DRAFT): S.CANCELLED,
    (Action.CANCEL, S.SCHEDULED): S.CANCELLED,
    (Action.CANCEL, S.PAUSED): S.CANCELLED,
    (Action.CANCEL, S.SENDING): S.CANCELLED,
    (Action.FAIL, S.SENDING): S.FAILED,
    (Action.FAIL, S.PAUSED): S.FAILED,
}

EDITABLE = frozenset({S.DRAFT, S.SCHEDULED})
READ_ONLY = frozenset({S.COMPLETED, S.CANCELLED, S.FAILED})
# Started and not finished: its recipients may still be sent to (now, or after a resume).
ACTIVE = frozenset({S.SENDING, S.PAUSED})

_VERB = {
    Action.SCHEDULE: "scheduled",
    Action.UNSCHEDULE: "unscheduled",
    Action.START: "started",
    Action.PAUSE: "paused",
    Action.RESUME: "resumed",
    Action.COMPLETE: "completed",
    Action.CANCEL: "cancelled",
    Action.FAIL: "marked failed",
}

_HINT = {
    (Action.PAUSE, S.PAUSED): "it is already paused; resume it to continue",
    (Action.RESUME, S.SENDING): "it is already sending",
    (Action.RESUME, S.DRAFT): "it has not been started; start it instead",
    (Action.RESUME, S.SCHEDULED): "it is scheduled; start it now or wait for its time",
    (Action.START, S.SENDING): "it is already sending",
    (Action.START, S.PAUSED): "it is paused; resume it instead",
    (Action.UNSCHEDULE, S.DRAFT): "it is not scheduled",
    (Action.PAUSE, S.DRAFT): "it has not started sending",
    (Action.PAUSE, S.SCHEDULED): "it has not started sending; cancel the schedule instead",
}


def describe(name: str, status: S) -> str:
    if status in READ_ONLY:
        return f"Broadcast '{name}' is {status}; it is read-only"
    return f"Broadcast '{name}' is {status}"


def next_status(name: str, status: S | str, action: Action) -> S:
    """The status after `action`, or IllegalTransition with a message a user can act on."""
    current = S(status)
    target = TRANSITIONS.get((action, current))
    if target is None:
        hint = _HINT.get((action, current))
        if hint is None:
            hint = "it is read-only" if current in READ_ONLY else _allowed_hint(current)
        raise IllegalTransition(
            f"Broadcast '{name}' is {current}; it cannot be {_VERB[action]} ({hint})."
        )
    return target


def ensure_editable(name: str, status: S | str) -> None:
    """Raise unless recipients and settings of the broadcast may still change."""
    current = S(status)
    if current in EDITABLE:
        return
    if current in READ_ONLY:
        raise IllegalTransition(f"Broadcast '{name}' is {current}; it is read-only.")
    raise IllegalTransition(f"Broadcast '{name}' is {current}; it can no longer be edited.")


def _allowed_hint(current: S) -> str:
    actions = sorted({a.value for (a, s) in TRANSITIONS if s == current})
    return "allowed now: " + ", ".join(actions) if actions else "nothing can change it now"
