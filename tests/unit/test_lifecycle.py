"""The broadcast status machine: every legal transition works, every other one explains itself."""

from __future__ import annotations

import itertools

import pytest

from broadcasts.enums import BroadcastStatus as S
from broadcasts.errors import IllegalTransition
from broadcasts.lifecycle import TRANSITIONS, Action, ensure_editable, next_status

LEGAL = {
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


def test_the_table_is_exactly_the_designed_machine() -> None:
    assert LEGAL == TRANSITIONS


@pytest.mark.parametrize(("action", "status"), sorted(LEGAL, key=str))
def test_legal_transition_reaches_its_target(action: Action, status: S) -> None:
    assert next_status("Holiday Sale", status, action) == LEGAL[(action, status)]


ILLEGAL = [(a, s) for a, s in itertools.product(Action, S) if (a, s) not in LEGAL]


@pytest.mark.parametrize(("action", "status"), ILLEGAL, ids=[f"{a}-{s}" for a, s in ILLEGAL])
def test_illegal_transition_names_the_broadcast_and_its_status(action: Action, status: S) -> None:
    with pytest.raises(IllegalTransition) as info:
        next_status("Holiday Sale", status, action)
    message = str(info.value)
    assert message.startswith(f"Broadcast 'Holiday Sale' is {status.value}; it cannot be")
    assert "(" in message  # always says why or what is allowed


@pytest.mark.parametrize("status", [S.COMPLETED, S.CANCELLED, S.FAILED])
def test_finished_broadcasts_are_read_only(status: S) -> None:
    for action in Action:
        with pytest.raises(IllegalTransition, match="read-only"):
            next_status("B", status, action)
    with pytest.raises(IllegalTransition, match=f"is {status.value}; it is read-only"):
        ensure_editable("B", status)


@pytest.mark.parametrize("status", [S.SENDING, S.PAUSED])
def test_started_broadcasts_can_no_longer_be_edited(status: S) -> None:
    with pytest.raises(IllegalTransition) as info:
        ensure_editable("Holiday Sale", status)
    assert (
        str(info.value)
        == f"Broadcast 'Holiday Sale' is {status.value}; it can no longer be edited."
    )


@pytest.mark.parametrize("status", [S.DRAFT, S.SCHEDULED])
def test_draft_and_scheduled_broadcasts_are_editable(status: S) -> None:
    ensure_editable("B", status)


def test_pausing_twice_says_it_is_already_paused() -> None:
    with pytest.raises(IllegalTransition, match="already paused; resume it"):
        next_status("B", S.PAUSED, Action.PAUSE)
