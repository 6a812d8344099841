"""The broadcast service on real databases: creation rules, transitions, read-only states."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broadcasts import audit, configs, service
from broadcasts.db import transaction
from broadcasts.enums import BroadcastStatus as S
from broadcasts.enums import RecipientStatus as R
from broadcasts.errors import IllegalTransition, NextStep, NotFoundError, ValidationFailed
from broadcasts.models import Broadcast, Recipient, utcnow
from broadcasts.recipients import NewRecipient, insert_recipients
from tests.factories import OPERATOR, add_recipients, make_broadcast, make_config


def test_agent_is_copied_from_the_configuration_at_creation(session: Session) -> None:
    make_config(session)
    broadcast = make_broadcast(session)
    assert broadcast.status == S.DRAFT
    assert broadcast.agent.name == "main-agent"
    configs.add_agent(
        session, name="other", kind="webhook", url="https://agents.example.com/y", by=OPERATOR
    )
    configs.set_primary_agent(session, "main", "other", by=OPERATOR)
    assert broadcast.agent.name == "main-agent"  # a later change does not rewrite history
    assert make_broadcast(session, "Second").agent.name == "other"


def test_creation_fails_clearly_without_a_primary_agent(session: Session) -> None:
    make_config(session, with_agent=False)
    with pytest.raises(ValidationFailed, match="has no primary agent") as info:
        make_broadcast(session)
    assert info.value.field == "config"


def test_only_approved_templates_can_be_chosen(session: Session) -> None:
    make_config(session)
    with pytest.raises(ValidationFailed, match="is PAUSED; only APPROVED"):
        service.create_broadcast(
            session, name="x", config_ref="main", template_ref="old_promo", by=OPERATOR
        )
    with pytest.raises(NotFoundError, match="sync the templates") as found:
        service.create_broadcast(
            session, name="x", config_ref="main", template_ref="nope", by=OPERATOR
        )
    assert found.value.next_step == NextStep.SYNC_TEMPLATES  # each adapter says how


def test_broadcast_found_by_id_prefix_or_name(session: Session) -> None:
    broadcast = make_broadcast(session)
    assert service.get_broadcast(session, broadcast.id[:6]) is broadcast
    assert service.get_broadcast(session, "holiday sale") is broadcast
    with pytest.raises(NotFoundError, match="No broadcast 'nothing'"):
        service.get_broadcast(session, "nothing")


def test_start_needs_recipients(session: Session) -> None:
    broadcast = make_broadcast(session)
    with pytest.raises(ValidationFailed, match="has no recipients yet"):
        service.start_broadcast(session, broadcast.id, by=OPERATOR)


def test_full_lifecycle_is_audited(session: Session) -> None:
    broadcast = make_broadcast(session)
    add_recipients(session, broadcast, ["+14155550100", "+14155550101"])
    service.start_broadcast(session, broadcast.id, by=OPERATOR)
    service.pause_broadcast(session, broadcast.id, by=OPERATOR, reason="checking")
    assert broadcast.status == S.PAUSED
    assert broadcast.status_reason == "checking"
    service.resume_broadcast(session, broadcast.id, by=OPERATOR)
    service.complete_broadcast(session, broadcast)
    assert broadcast.status == S.COMPLETED
    actions = [e.action for e in audit.history(session, broadcast.id)]
    assert actions == [
        "broadcast.create",
        "broadcast.start",
        "broadcast.pause",
        "broadcast.resume",
        "broadcast.complete",
    ]
    with pytest.raises(IllegalTransition, match="is completed; it cannot be cancelled"):
        service.cancel_broadcast(session, broadcast.id, by=OPERATOR)


def test_sending_broadcast_can_no_longer_be_edited(session: Session) -> None:
    broadcast = make_broadcast(session)
    add_recipients(session, broadcast, ["+14155550100"])
    service.start_broadcast(session, broadcast.id, by=OPERATOR)
    with pytest.raises(
        IllegalTransition,
        match="^Broadcast 'Holiday Sale' is sending; it can no longer be edited.$",
    ):
        insert_recipients(session, broadcast, [NewRecipient("+14155550199")])
    with pytest.raises(IllegalTransition, match="can no longer be edited"):
        service.update_pacing(session, broadcast.id, by=OPERATOR, batch_size=10)


def test_cancel_skips_unsent_recipients_and_is_read_only_after(session: Session) -> None:
    broadcast = make_broadcast(session)
    add_recipients(session, broadcast, [f"+1415555{i:04d}" for i in range(5)])
    cancelled, skipped = service.cancel_broadcast(session, broadcast.id, by=OPERATOR)
    assert (cancelled.status, skipped) == (S.CANCELLED, 5)
    statuses = set(
        session.scalars(select(Recipient.status).where(Recipient.broadcast_id == broadcast.id))
    )
    assert statuses == {R.SKIPPED}
    assert (cancelled.skipped_count, cancelled.pending_count) == (5, 0)
    with pytest.raises(IllegalTransition, match="read-only"):
        insert_recipients(session, cancelled, [NewRecipient("+14155550199")])


def test_schedule_in_the_past_is_refused_and_unschedule_returns_to_draft(session: Session) -> None:
    broadcast = make_broadcast(session)
    add_recipients(session, broadcast, ["+14155550100"])
    with pytest.raises(ValidationFailed, match="is in the past"):
        service.schedule_broadcast(
            session, broadcast.id, utcnow() - timedelta(minutes=1), by=OPERATOR
        )
    at = utcnow() + timedelta(hours=2)
    service.schedule_broadcast(session, broadcast.id, at, by=OPERATOR)
    assert broadcast.status == S.SCHEDULED
    assert broadcast.scheduled_at == at.replace(microsecond=broadcast.scheduled_at.microsecond)  # type: ignore[union-attr]
    service.unschedule_broadcast(session, broadcast.id, by=OPERATOR)
    assert (broadcast.status, broadcast.scheduled_at) == (S.DRAFT, None)


def test_two_racing_actors_cannot_both_transition(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        broadcast_id = make_broadcast(s).id
        add_recipients(s, service.get_broadcast(s, broadcast_id), ["+14155550100"])
    with transaction(sessions) as s:
        service.start_broadcast(s, broadcast_id, by=OPERATOR)
    with transaction(sessions) as s, pytest.raises(IllegalTransition, match="already sending"):
        service.start_broadcast(s, broadcast_id, by=OPERATOR)


def test_pacing_overrides_fall_back_to_the_configuration(session: Session) -> None:
    make_config(session, throughput_mps=250, batch_size=300, batch_pause_seconds=2)
    broadcast = make_broadcast(session)
    assert service.effective_pacing(broadcast) == (300, 2.0, 250.0)
    service.update_pacing(
        session, broadcast.id, by=OPERATOR, batch_size=50, batch_pause_seconds=0, rate_mps=400
    )
    assert service.effective_pacing(broadcast) == (50, 0.0, 250.0)  # never above the number's rate
    with pytest.raises(ValidationFailed, match="failure threshold"):
        service.update_pacing(session, broadcast.id, by=OPERATOR, failure_threshold=2)


def test_a_draft_whose_card_failed_is_discarded_only_while_it_holds_nobody(
    session: Session,
) -> None:
    empty = make_broadcast(session, "Shown nowhere")
    filled = make_broadcast(session, "Filled from the CLI meanwhile")
    add_recipients(session, filled, ["+14155550101"])
    session.flush()
    service.discard_unposted_draft(session, empty.id)
    service.discard_unposted_draft(session, filled.id)
    session.flush()
    assert session.get(Broadcast, empty.id) is None
    assert session.get(Broadcast, filled.id) is not None  # its recipients keep their broadcast
