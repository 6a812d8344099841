"""Draft editing through the service layer on both databases: remove, undo imports, re-template."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broadcasts import audit, drafts, service
from broadcasts.contacts import ContactData, upsert_contacts
from broadcasts.db import transaction
from broadcasts.errors import IllegalTransition, NotFoundError, ValidationFailed
from broadcasts.imports import import_csv
from broadcasts.metrics import recount, stored_counts
from broadcasts.models import Contact, Recipient, utcnow
from broadcasts.recipients import NewRecipient, insert_recipients
from broadcasts.templates import TemplateData, upsert_templates
from tests.factories import OPERATOR, add_recipients, make_broadcast

NAMED = TemplateData(
    name="order_update",
    language="en_US",
    category="UTILITY",
    status="APPROVED",
    parameter_format="NAMED",
    parameter_names=["first_name", "order_id"],
    body_text="Hi {{first_name}}, order {{order_id}} has shipped.",
    components=[{"type": "BODY", "text": "Hi {{first_name}}, order {{order_id}} has shipped."}],
)
TWO_POSITIONAL = TemplateData(
    name="reminder",
    language="en_US",
    category="UTILITY",
    status="APPROVED",
    parameter_format="POSITIONAL",
    parameter_names=["1"],
    body_text="Reminder for {{1}}: see you soon.",
    components=[{"type": "BODY", "text": "Reminder for {{1}}: see you soon."}],
)


def _phones(session: Session, broadcast_id: str) -> list[str]:
    return sorted(
        session.scalars(select(Recipient.phone).where(Recipient.broadcast_id == broadcast_id))
    )


def _assert_counters(session: Session, broadcast_id: str) -> None:
    broadcast = service.get_broadcast(session, broadcast_id)
    assert stored_counts(broadcast) == recount(session, broadcast_id)


def test_remove_recipients_by_number_keeps_counters_true(session: Session) -> None:
    broadcast = make_broadcast(session)
    add_recipients(session, broadcast, ["+14155550100", "+14155550101", "+14155550102"])
    phones = drafts.parse_phones(["+1 415 555 0100, +14155550199"])
    removal = drafts.remove_recipients(session, broadcast.id, by=OPERATOR, phones=phones)
    assert (removal.removed, removal.not_found) == (1, ["+14155550199"])
    assert _phones(session, broadcast.id) == ["+14155550101", "+14155550102"]
    assert broadcast.total_count == 2
    _assert_counters(session, broadcast.id)
    entry = audit.entries(session, broadcast.id)[-1]
    assert entry.action == "broadcast.remove_recipients"
    assert entry.summary.startswith("removed 1 recipients (how: phones; not found: 1)")


def test_bad_numbers_are_named_and_nothing_is_removed(session: Session) -> None:
    broadcast = make_broadcast(session)
    add_recipients(session, broadcast, ["+14155550100"])
    with pytest.raises(ValidationFailed, match="Not a phone number: 'call me'"):
        drafts.parse_phones(["+14155550100", "call me"])
    with pytest.raises(NotFoundError, match="None of these numbers is a recipient"):
        drafts.remove_recipients(session, broadcast.id, by=OPERATOR, phones=["+14155550177"])
    with pytest.raises(ValidationFailed, match="some numbers, one import, or all"):
        drafts.remove_recipients(session, broadcast.id, by=OPERATOR)
    assert _phones(session, broadcast.id) == ["+14155550100"]


def test_undo_an_import_removes_exactly_its_recipients(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        broadcast = make_broadcast(session)
        add_recipients(session, broadcast, ["+14155550100"])
        bid = broadcast.id
    first = import_csv(
        sessions,
        bid,
        io.BytesIO(b"phone_number,param1\n+14155550101,Ann\n+14155550100,Dup\n"),
        filename="first.csv",
        region=None,
        by=OPERATOR,
    )
    second = import_csv(
        sessions,
        bid,
        io.BytesIO(b"phone_number,param1\n+14155550102,Bo\n+14155550103,Cy\n"),
        filename="second.csv",
        region=None,
        by=OPERATOR,
    )
    with transaction(sessions) as session:
        broadcast = service.get_broadcast(session, bid)
        lines = drafts.list_imports(session, broadcast)
        assert [(line.filename, line.remaining) for line in lines] == [
            ("first.csv", 1),
            ("second.csv", 2),
        ]
        assert lines[1].label == f"#{second.import_id} `second.csv`: 2 recipients"
        removal = drafts.remove_recipients(session, bid, by=OPERATOR, import_id=second.import_id)
        assert removal.removed == 2
        assert _phones(session, bid) == ["+14155550100", "+14155550101"]
        _assert_counters(session, bid)
        with pytest.raises(ValidationFailed, match="has no recipients left to remove"):
            drafts.remove_recipients(session, bid, by=OPERATOR, import_id=second.import_id)
        with pytest.raises(NotFoundError, match="has no import #999"):
            drafts.remove_recipients(session, bid, by=OPERATOR, import_id=999)
        assert first.import_id is not None


def test_remove_all_and_the_rules_of_scheduled_and_sent_broadcasts(session: Session) -> None:
    broadcast = make_broadcast(session)
    add_recipients(session, broadcast, ["+14155550100", "+14155550101"])
    service.schedule_broadcast(session, broadcast.id, utcnow() + timedelta(hours=1), by=OPERATOR)
    refused = pytest.raises(ValidationFailed, match="is scheduled and would have no recipients")
    with refused, session.begin_nested():
        drafts.remove_recipients(session, broadcast.id, by=OPERATOR, everyone=True)
    session.refresh(broadcast)
    assert broadcast.total_count == 2
    service.unschedule_broadcast(session, broadcast.id, by=OPERATOR)
    removal = drafts.remove_recipients(session, broadcast.id, by=OPERATOR, everyone=True)
    assert removal.removed == 2 and broadcast.total_count == 0
    add_recipients(session, broadcast, ["+14155550100"])
    service.start_broadcast(session, broadcast.id, by=OPERATOR)
    with pytest.raises(IllegalTransition, match="is sending; it can no longer be edited"):
        drafts.remove_recipients(session, broadcast.id, by=OPERATOR, everyone=True)
    with pytest.raises(IllegalTransition, match="can no longer be edited"):
        drafts.edit_draft(session, broadcast.id, by=OPERATOR, name="Other")


def test_rename_a_draft(session: Session) -> None:
    broadcast = make_broadcast(session)
    result = drafts.edit_draft(session, broadcast.id, by=OPERATOR, name="  Winter   Sale ")
    assert broadcast.name == "Winter Sale"
    assert result.changes == ["renamed from 'Holiday Sale' to 'Winter Sale'"]
    with pytest.raises(ValidationFailed, match="needs a name"):
        drafts.edit_draft(session, broadcast.id, by=OPERATOR, name="  ")
    with pytest.raises(ValidationFailed, match="Nothing to change"):
        drafts.edit_draft(session, broadcast.id, by=OPERATOR, name="Winter Sale")


def test_new_template_revalidates_recipients_and_changes_nothing_when_some_do_not_fit(
    session: Session,
) -> None:
    broadcast = make_broadcast(session)
    upsert_templates(session, broadcast.config, [NAMED, TWO_POSITIONAL])
    insert_recipients(
        session,
        broadcast,
        [
            NewRecipient("+14155550100", {"1": "Ann", "first_name": "Ann", "order_id": "A1"}),
            NewRecipient("+14155550101", {"1": "Bo", "first_name": "Bo"}),
            NewRecipient("+14155550102", {"1": "Cy"}),
        ],
    )
    with pytest.raises(ValidationFailed, match="2 recipients do not fit template") as info:
        drafts.edit_draft(session, broadcast.id, by=OPERATOR, template_ref="order_update")
    message = str(info.value)
    assert "+14155550101 has no order_id" in message
    assert "+14155550102 has no first_name" in message
    assert "nothing was changed" in message
    assert info.value.field == "template"
    assert broadcast.template.name == "holiday_promotion"
    assert len(_phones(session, broadcast.id)) == 3

    result = drafts.edit_draft(
        session, broadcast.id, by=OPERATOR, template_ref="order_update", drop_unfit=True
    )
    assert broadcast.template.name == "order_update"
    assert result.removed_unfit == 2
    assert _phones(session, broadcast.id) == ["+14155550100"]
    assert "2 recipients that did not fit were removed" in result.changes
    _assert_counters(session, broadcast.id)


def test_new_template_takes_values_by_column_alias_and_from_contact_attributes(
    session: Session,
) -> None:
    broadcast = make_broadcast(session)
    upsert_templates(session, broadcast.config, [NAMED, TWO_POSITIONAL])
    upsert_contacts(
        session,
        [ContactData(phone="+14155550101", attributes={"First Name": "Bo", "order_id": "B7"})],
    )
    contact_id = session.scalar(select(Contact.id).where(Contact.phone == "+14155550101"))
    insert_recipients(
        session,
        broadcast,
        [
            NewRecipient("+14155550100", {"1": "Ann"}),
            NewRecipient("+14155550101", {"1": "Bo"}, contact_id),
        ],
    )
    drafts.edit_draft(session, broadcast.id, by=OPERATOR, template_ref="reminder")
    assert broadcast.template.name == "reminder"
    with pytest.raises(ValidationFailed, match="1 recipients do not fit"):
        drafts.edit_draft(session, broadcast.id, by=OPERATOR, template_ref="order_update")
    drafts.edit_draft(
        session, broadcast.id, by=OPERATOR, template_ref="order_update", drop_unfit=True
    )
    row = session.scalar(select(Recipient).where(Recipient.broadcast_id == broadcast.id))
    assert row is not None
    assert (row.phone, row.params["first_name"], row.params["order_id"]) == (
        "+14155550101",
        "Bo",
        "B7",
    )


def test_only_approved_templates_of_the_same_configuration(session: Session) -> None:
    broadcast = make_broadcast(session)
    add_recipients(session, broadcast, ["+14155550100"])
    with pytest.raises(ValidationFailed, match="is PAUSED; only APPROVED"):
        drafts.edit_draft(session, broadcast.id, by=OPERATOR, template_ref="old_promo")
    with pytest.raises(NotFoundError, match="No template 'nope'"):
        drafts.edit_draft(session, broadcast.id, by=OPERATOR, template_ref="nope")
