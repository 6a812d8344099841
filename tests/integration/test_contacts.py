"""The contact list: imports, flags, selection into broadcasts (never test or opted-out
contacts), and the sync of a number's WhatsApp contacts from the sandbox over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from bot.cli.main import cli
from broadcasts import contacts
from broadcasts.contacts import ContactData, upsert_contacts
from broadcasts.db import transaction
from broadcasts.errors import IllegalTransition, ValidationFailed
from broadcasts.metrics import recount, stored_counts
from broadcasts.models import Broadcast, Contact, Import, Recipient
from broadcasts.service import create_broadcast, start_broadcast
from broadcasts.templates import TemplateData, upsert_templates
from kapso.sandbox import Sandbox, SandboxConfig, run_sandbox
from tests.factories import OPERATOR, make_broadcast, make_config

NAMED = TemplateData(
    name="order_shipped",
    language="en",
    category="UTILITY",
    status="APPROVED",
    parameter_format="NAMED",
    parameter_names=["first_name", "order_id"],
    body_text="Hi {{first_name}}, order {{order_id}} has shipped.",
)


def invoke(db_url: str, *args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(
        cli, list(args), env={"DATABASE_URL": db_url, "PHONE_DEFAULT_REGION": None, **(env or {})}
    )


def ok(db_url: str, *args: str, env: dict[str, str | None] | None = None) -> str:
    result = invoke(db_url, *args, env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def seed(session: Session) -> dict[str, list[str]]:
    """Eligible contacts (with a param1 attribute), test ones, opted-out ones, one of each that
    is both, and eligible ones lacking the attribute."""
    groups: dict[str, list[str]] = {"eligible": [], "test": [], "opted_out": [], "no_param": []}
    data: list[ContactData] = []
    for i in range(40):
        phone = f"+44740020{i:04d}"
        kind = ["eligible", "test", "opted_out", "eligible", "no_param"][i % 5]
        groups[kind].append(phone)
        attributes = {} if kind == "no_param" else {"param1": f"Name {i}"}
        data.append(ContactData(phone, attributes=attributes, is_test=kind == "test"))
    upsert_contacts(session, data)
    for phone in groups["opted_out"]:
        contacts.set_opt_out(session, phone, True, "STOP")
    both = groups["eligible"].pop()
    contacts.mark_test(session, both)
    contacts.set_opt_out(session, both, True, "STOP")
    groups["both"] = [both]
    return groups


def recipients(session: Session, broadcast_id: str) -> set[str]:
    return set(
        session.scalars(select(Recipient.phone).where(Recipient.broadcast_id == broadcast_id))
    )


def test_select_all_eligible_never_takes_test_or_opted_out_contacts(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        groups = seed(session)
        broadcast = make_broadcast(session)
        assert contacts.count_eligible(session) == len(groups["eligible"] + groups["no_param"])
        summary = contacts.add_contacts_to_broadcast(
            session, broadcast.id, all_eligible=True, by=OPERATOR
        )
        added = recipients(session, broadcast.id)
        # Provably: no recipient of the broadcast joins to a test or opted-out contact.
        offending = session.scalar(
            select(func.count())
            .select_from(Recipient)
            .join(Contact, Contact.phone == Recipient.phone)
            .where(
                Recipient.broadcast_id == broadcast.id,
                or_(Contact.is_test.is_(True), Contact.opted_out_at.is_not(None)),
            )
        )
        stored = session.get(Broadcast, broadcast.id)
        assert stored is not None
        assert stored_counts(stored) == recount(session, broadcast.id)
        record = session.scalars(select(Import)).one()
        linked = set(
            session.scalars(select(Recipient.phone).where(Recipient.import_id == record.id))
        )
        assert (record.source, record.status, record.rows_read) == ("contacts", "done", 40)
        assert (record.accepted, record.test_excluded, record.opted_out) == (
            summary.added,
            summary.excluded_test,
            summary.excluded_opted_out,
        )
        assert linked == added
    assert offending == 0
    assert added == set(groups["eligible"])
    assert summary.selected == 40
    assert summary.added == len(groups["eligible"])
    assert summary.excluded_test == len(groups["test"]) + 1  # the one that is both
    assert summary.excluded_opted_out == len(groups["opted_out"])
    assert summary.missing_params == len(groups["no_param"])
    assert summary.missing_examples[0].endswith("has no param1")


def test_explicit_ids_and_search_still_leave_out_test_and_opted_out(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        groups = seed(session)
        broadcast = make_broadcast(session)
        by_phone = {c.phone: c.id for c in session.scalars(select(Contact))}
        wanted = [by_phone[groups[k][0]] for k in ("eligible", "test", "opted_out", "both")]
        summary = contacts.add_contacts_to_broadcast(
            session, broadcast.id, ids=[*wanted, 999_999], by=OPERATOR
        )
        assert (summary.added, summary.excluded_test, summary.excluded_opted_out) == (1, 2, 1)
        assert summary.not_found == [999_999]
        assert recipients(session, broadcast.id) == {groups["eligible"][0]}
        again = contacts.add_contacts_to_broadcast(
            session, broadcast.id, search="7400200", by=OPERATOR
        )
        assert again.added == len(groups["eligible"]) - 1
        assert again.already_present == 1
        assert recipients(session, broadcast.id) == set(groups["eligible"])


def test_parameters_come_from_attributes_matched_like_csv_columns(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        config = make_config(session)
        upsert_templates(session, config, [NAMED])
        broadcast = create_broadcast(
            session, name="named", config_ref="main", template_ref=NAMED.name, by=OPERATOR
        )
        upsert_contacts(
            session,
            [
                ContactData("+447400300001", attributes={"First Name": "Ana", "ORDER_ID": "A-1"}),
                ContactData("+447400300002", attributes={"first_name": "Bob"}),
            ],
        )
        summary = contacts.add_contacts_to_broadcast(
            session, broadcast.id, all_eligible=True, by=OPERATOR
        )
        params = dict(
            session.execute(
                select(Recipient.phone, Recipient.params).where(
                    Recipient.broadcast_id == broadcast.id
                )
            ).all()
        )
    assert summary.added == 1 and summary.missing_params == 1
    assert summary.missing_examples == ["+447400300002 has no order_id"]
    assert params == {"+447400300001": {"first_name": "Ana", "order_id": "A-1"}}


def test_adding_contacts_is_refused_once_sending_and_needs_one_selection(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        seed(session)
        broadcast = make_broadcast(session)
        with pytest.raises(ValidationFailed, match="one way"):
            contacts.add_contacts_to_broadcast(session, broadcast.id, by=OPERATOR)
        contacts.add_contacts_to_broadcast(session, broadcast.id, all_eligible=True, by=OPERATOR)
        start_broadcast(session, broadcast.id, by=OPERATOR)
        with pytest.raises(IllegalTransition, match="can no longer be edited"):
            contacts.add_contacts_to_broadcast(
                session, broadcast.id, all_eligible=True, by=OPERATOR
            )


def test_upserts_merge_attributes_and_never_clear_flags(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        first = upsert_contacts(
            session,
            [
                ContactData("+447400400001", name="Ana", attributes={"a": "1"}, is_test=True),
                ContactData("+447400400001", attributes={"b": "2"}),
            ],
        )
        second = upsert_contacts(
            session, [ContactData("+447400400001", wa_id="447400400001", attributes={"a": "3"})]
        )
        third = upsert_contacts(
            session, [ContactData("+447400400001", wa_id="447400400001", attributes={"a": "3"})]
        )
        contact = session.scalars(select(Contact)).one()
    assert (first.created, second.updated, third.updated) == (1, 1, 0)
    assert contact.attributes == {"a": "3", "b": "2"}
    assert (contact.name, contact.wa_id, contact.is_test) == ("Ana", "447400400001", True)


def test_opt_out_by_wa_id_creates_the_contact_and_opt_in_clears_it(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        contact = contacts.set_opt_out(session, "447400500001", True, "STOP")
        assert (contact.phone, contact.wa_id, contact.opt_out_reason) == (
            "+447400500001",
            "447400500001",
            "STOP",
        )
        stamp = contact.opted_out_at
        assert contacts.set_opt_out(session, "+447400500001", True, "again").opted_out_at == stamp
        assert contacts.set_opt_out(session, "447400500001", False).opted_out_at is None
        with pytest.raises(ValidationFailed, match="not a phone number"):
            contacts.set_opt_out(session, "hello", True)


def test_contacts_cli_import_list_flags_and_add(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    with transaction(sessions) as session:
        broadcast_id = make_broadcast(session).id
    people = tmp_path / "people.csv"
    people.write_text(
        "Phone;Name;Param1;Tier\n+447400600001;Ana;Ana;gold\n07400 600002;Bob;Bob;\nbad;X;X;\n",
        encoding="utf-8",
    )
    out = json.loads(ok(db_url, "contacts", "import", str(people), "--region", "GB", "--json"))
    assert {k: out[k] for k in ("rows", "created", "invalid", "delimiter", "region")} == {
        "rows": 3,
        "created": 2,
        "invalid": 1,
        "delimiter": ";",
        "region": "GB",
    }
    assert (tmp_path / "people.errors.csv").exists()
    testers = tmp_path / "testers.csv"
    testers.write_text("phone,param1\n+447400600003,Tess\n", encoding="utf-8")
    ok(db_url, "contacts", "import", str(testers), "--test")
    ok(db_url, "contacts", "opt-out", "+44 7400 600002", "--reason", "asked by phone")
    listed: list[dict[str, Any]] = json.loads(ok(db_url, "contacts", "list", "--json"))
    assert {c["phone"]: c["attributes"] for c in listed} == {
        "+447400600001": {"name": "Ana", "param1": "Ana", "tier": "gold"},
        "+447400600002": {"name": "Bob", "param1": "Bob"},
        "+447400600003": {"param1": "Tess"},
    }
    eligible = json.loads(ok(db_url, "contacts", "list", "--eligible", "--json"))
    assert [c["phone"] for c in eligible] == ["+447400600001"]
    assert "1 eligible" in ok(db_url, "contacts", "list")
    added = json.loads(ok(db_url, "broadcasts", "add-contacts", broadcast_id, "--all", "--json"))
    assert (added["added"], added["excluded_test"], added["excluded_opted_out"]) == (1, 1, 1)
    ok(db_url, "contacts", "mark-test", "+447400600003", "--off")
    ok(db_url, "contacts", "opt-in", "+447400600002")
    text = ok(db_url, "broadcasts", "add-contacts", broadcast_id, "--all")
    assert "Added                   2" in text
    with transaction(sessions) as session:
        assert len(recipients(session, broadcast_id)) == 3


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with run_sandbox(SandboxConfig(latency_ms=0, contacts=230)) as sb:
        yield sb


def add_config(db_url: str, sb: Sandbox, provider: str) -> None:
    ok(
        db_url,
        "configs",
        "add",
        provider,
        "--provider",
        provider,
        "--phone-number-id",
        "100200300",
        "--waba-id",
        "900800700",
        "--api-base-url",
        sb.base_url,
    )


def test_sync_from_the_sandbox_is_rerunnable_and_marks_sandbox_contacts_test(
    db_url: str, sessions: sessionmaker[Session], sandbox: Sandbox
) -> None:
    add_config(db_url, sandbox, "sandbox")
    out = json.loads(ok(db_url, "contacts", "sync", "--config", "sandbox", "--json"))
    assert out == {"fetched": 230, "created": 230, "updated": 0, "skipped": 0}
    again = json.loads(ok(db_url, "contacts", "sync", "--config", "sandbox", "--json"))
    assert again == {"fetched": 230, "created": 0, "updated": 0, "skipped": 0}
    with transaction(sessions) as session:
        rows = list(session.scalars(select(Contact).order_by(Contact.phone)))
        assert len(rows) == 230 and all(c.is_test and c.source == "kapso" for c in rows)
        assert (rows[0].phone, rows[0].wa_id) == ("+15550200000", "15550200000")
        assert rows[0].name  # the profile name is kept
        assert contacts.count_eligible(session) == 0


def test_sync_through_a_kapso_configuration_gives_eligible_contacts(
    db_url: str, sessions: sessionmaker[Session], sandbox: Sandbox
) -> None:
    add_config(db_url, sandbox, "kapso")
    env: dict[str, str | None] = {"KAPSO_API_KEY": "sandbox-key"}
    out = json.loads(ok(db_url, "contacts", "sync", "--config", "kapso", "--json", env=env))
    assert out["created"] == 230
    with transaction(sessions) as session:
        assert contacts.count_eligible(session) == 230
    result = invoke(db_url, "contacts", "sync", "--config", "kapso", env={"KAPSO_API_KEY": "x"})
    assert result.exit_code == 1 and "Traceback" not in result.output
