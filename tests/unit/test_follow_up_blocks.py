"""Follow-up building blocks: card buttons per status, the edit modal and the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.slack.blocks import ids, messages, modals
from bot.slack.blocks.card import card_blocks
from bot.slack.blocks.state import edit_draft
from broadcasts.audit import AuditLine, describe
from tests.unit.test_blocks import LONG, assert_within_limits, sample_card


def _action_ids(status: str) -> list[str]:
    blocks = card_blocks(sample_card(status))
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


@pytest.mark.parametrize(
    "status", ["draft", "scheduled", "sending", "paused", "completed", "cancelled", "failed"]
)
def test_every_card_has_a_report_button(status: str) -> None:
    assert ids.CARD_REPORT in _action_ids(status)


def test_edit_and_duplicate_on_editable_cards_retry_only_on_finished_ones() -> None:
    for status in ("draft", "scheduled"):
        assert {ids.CARD_EDIT, ids.CARD_DUPLICATE} <= set(_action_ids(status))
        assert ids.CARD_RETRY not in _action_ids(status)
    for status in ("sending", "paused"):
        assert not {ids.CARD_EDIT, ids.CARD_RETRY} & set(_action_ids(status))
    for status in ("completed", "cancelled", "failed"):
        assert {ids.CARD_RETRY, ids.CARD_DUPLICATE} <= set(_action_ids(status))
        assert ids.CARD_EDIT not in _action_ids(status)


def test_edit_modal_fits_slack_limits_and_preselects_the_current_template() -> None:
    choices = modals.EditChoices(
        broadcast_id="b" * 36,
        name=LONG[:200],
        recipients=12_345,
        template_id=7,
        templates=tuple(
            modals.TemplateChoice(i, LONG, "en_US", "MARKETING", LONG) for i in range(1, 150)
        ),
        imports=tuple((i, f"#{i} {LONG}") for i in range(1, 150)),
    )
    view = modals.edit_draft_modal(choices)
    assert_within_limits(view["blocks"], max_blocks=100)
    select = next(b for b in view["blocks"] if b.get("block_id") == ids.B_EDIT_TEMPLATE)
    assert select["element"]["initial_option"]["value"] == "7"
    assert len(select["element"]["options"]) == 100
    without_imports = modals.edit_draft_modal(
        modals.EditChoices("b", "n", 0, 1, choices.templates[:1], ())
    )
    assert ids.B_EDIT_IMPORT not in [b.get("block_id") for b in without_imports["blocks"]]


def test_edit_modal_state_is_parsed_in_one_place() -> None:
    view = {
        "state": {
            "values": {
                ids.B_EDIT_NAME: {ids.A_EDIT_NAME: {"value": " Winter Sale "}},
                ids.B_EDIT_TEMPLATE: {ids.A_EDIT_TEMPLATE: {"selected_option": {"value": "12"}}},
                ids.B_EDIT_DROP_UNFIT: {
                    ids.A_EDIT_DROP_UNFIT: {"selected_options": [{"value": ids.CHECKED}]}
                },
                ids.B_EDIT_PHONES: {ids.A_EDIT_PHONES: {"value": "+14155550100\n+14155550101"}},
                ids.B_EDIT_IMPORT: {ids.A_EDIT_IMPORT: {"selected_option": None}},
                ids.B_EDIT_ALL: {ids.A_EDIT_ALL: {"selected_options": []}},
            }
        }
    }
    data = edit_draft(view)
    assert (data.name, data.template_id, data.drop_unfit) == ("Winter Sale", 12, True)
    assert (data.import_id, data.remove_all) == (None, False)
    assert data.phones == "+14155550100\n+14155550101"


def test_audit_blocks_mention_slack_users_and_point_to_the_cli_for_older_entries() -> None:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    lines = [
        AuditLine(at + timedelta(minutes=i), "U0ANA", "slack", "broadcast.pause", LONG[:300], {})
        for i in range(60)
    ] + [AuditLine(at, "cli:ops", "cli", "broadcast.start", "started sending", {})]
    blocks = messages.audit_blocks("Holiday Sale", "7c1e2a9b", lines, total=200)
    assert_within_limits(blocks, max_blocks=50)
    text = str(blocks)
    assert "<@U0ANA>" in text and "`cli:ops` (cli) started sending" in text
    assert "broadcast-bot broadcasts audit 7c1e2a9b" in text
    assert messages.audit_blocks("x", "1234", [], total=0)[0]["text"]["text"].endswith(
        "nothing recorded yet."
    )


def test_audit_phrases_tolerate_missing_details() -> None:
    assert describe(
        "broadcast.pause", {"from": "sending", "to": "paused", "reason": "checking"}
    ) == ("paused it (sending → paused; reason: checking)")
    assert describe("broadcast.create", {}) == "created it with template"
    assert describe("config.something_new", {"x": 1}) == "config.something_new"


def test_user_text_in_the_audit_cannot_ping_or_link() -> None:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    line = AuditLine(at, "U0EVE", "slack", "broadcast.edit", "edited it (name '<!channel>')", {})
    text = str(messages.audit_blocks("<!here> & co", "12345678", [line], total=1))
    assert "<!channel>" not in text and "<!here>" not in text
    assert "&lt;!channel&gt;" in text and "&lt;!here&gt; &amp; co" in text
