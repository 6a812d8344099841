"""The follow-up commands as an operator types them: edit a draft, retry, duplicate, audit."""

from __future__ import annotations

import json
from pathlib import Path

from broadcasts.db import make_engine, make_session_factory, transaction
from broadcasts.templates import upsert_templates
from tests.e2e.test_cli import fails, ok
from tests.factories import make_broadcast
from tests.integration.test_draft_editing import NAMED


def _draft(db_url: str) -> str:
    engine = make_engine(db_url)
    with transaction(make_session_factory(engine)) as session:
        broadcast = make_broadcast(session)
        upsert_templates(session, broadcast.config, [NAMED])
        broadcast_id = broadcast.id
    engine.dispose()
    return broadcast_id


def test_operator_edits_a_draft_then_retries_and_duplicates_it(db_url: str, tmp_path: Path) -> None:
    bid = _draft(db_url)
    first = tmp_path / "first.csv"
    first.write_text("phone_number,param1\n+14155550100,Ann\n+14155550101,Bo\n")
    second = tmp_path / "second.csv"
    second.write_text("phone_number,param1\n+14155550102,Cy\n+14155550103,Di\n")
    ok(db_url, "broadcasts", "upload", bid[:8], str(first))
    ok(db_url, "broadcasts", "upload", bid[:8], str(second))
    imports = json.loads(ok(db_url, "broadcasts", "imports", bid[:8], "--json"))
    assert [(i["filename"], i["remaining"]) for i in imports] == [
        ("first.csv", 2),
        ("second.csv", 2),
    ]
    assert "STILL IN" in ok(db_url, "broadcasts", "imports", bid[:8])

    # Undo the second file, then drop one number of the first.
    out = ok(db_url, "broadcasts", "remove-recipients", bid[:8], "--import", str(imports[1]["id"]))
    assert out.strip() == "Removed 2 recipients; 2 left."
    out = ok(db_url, "broadcasts", "remove-recipients", bid[:8], "+1 415 555 0101", "+14155550199")
    assert out.strip() == "Removed 1 recipients; 1 left. Not in the broadcast: +14155550199."
    assert "Not a phone number: 'abc'" in fails(
        db_url, "broadcasts", "remove-recipients", bid[:8], "abc"
    )
    assert "some numbers, one import, or all" in fails(
        db_url, "broadcasts", "remove-recipients", bid[:8]
    )

    # A template whose parameters the recipients lack is refused, with the reason, until asked.
    error = fails(db_url, "broadcasts", "edit", bid[:8], "--template", "order_update")
    assert "1 recipients do not fit template 'order_update'" in error
    assert "+14155550100 has no first_name" in error
    assert error.endswith("nothing was changed. `--drop-unfit` removes them.")
    out = ok(db_url, "broadcasts", "edit", bid[:8], "--name", "Winter Sale")
    assert out.strip() == "Broadcast 'Winter Sale': renamed from 'Holiday Sale' to 'Winter Sale'."

    # Retrying needs a finished broadcast; a cancelled one retries its skipped recipients.
    assert "retry its failures once it has finished" in fails(
        db_url, "broadcasts", "retry-failed", bid[:8]
    )
    ok(db_url, "broadcasts", "cancel", bid[:8])
    preview = ok(db_url, "broadcasts", "retry-failed", bid[:8], "--dry-run")
    assert preview.strip() == (
        "A retry of 'Winter Sale' would hold 1 to retry "
        "(0 failed with a retryable error, 1 never attempted)."
    )
    retry = json.loads(ok(db_url, "broadcasts", "retry-failed", bid[:8], "--json"))
    assert (retry["name"], retry["recipients"], retry["never_attempted"]) == (
        "Winter Sale (retry)",
        1,
        1,
    )
    assert json.loads(ok(db_url, "broadcasts", "show", retry["id"], "--json"))["status"] == "draft"
    assert "Nothing to retry in 'Winter Sale'" in fails(
        db_url, "broadcasts", "retry-failed", bid[:8]
    )
    out = ok(db_url, "broadcasts", "duplicate", bid[:8], "--name", "Spring Sale")
    assert "Created draft 'Spring Sale'" in out and "with 1 recipients" in out

    trail = ok(db_url, "broadcasts", "audit", bid[:8])
    assert trail.splitlines()[0].split()[:3] == ["WHEN", "(UTC)", "WHO"]
    for phrase in (
        "created it with template holiday_promotion",
        "imported a file: 2 recipients added",
        "removed 2 recipients (how: import",
        "edited it (name 'Winter Sale'",
        "cancelled it (draft → cancelled)",
        "made a retry draft with 1 recipients",
        "duplicated it with 1 recipients",
    ):
        assert phrase in trail, phrase
    entries = json.loads(ok(db_url, "broadcasts", "audit", bid[:8], "--json", "--limit", "1"))
    assert [e["action"] for e in entries] == ["broadcast.duplicate"]
    assert entries[0]["actor"].startswith("cli:")
