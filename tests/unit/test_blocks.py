"""Block Kit builders stay inside Slack's limits, whatever the names and numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.slack.blocks import card, home, messages, modals
from bot.slack.blocks.card import CardData, card_blocks
from bot.slack.blocks.kit import progress_bar
from broadcasts.durations import duration_text
from broadcasts.metrics import Counts

LONG = "Ü" * 5000


def walk(node: Any, path: str = "") -> list[tuple[str, Any]]:
    out = [(path, node)]
    if isinstance(node, dict):
        for key, value in node.items():
            out += walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += walk(value, f"{path}[{i}]")
    return out


def assert_within_limits(blocks: list[dict[str, Any]], *, max_blocks: int) -> None:
    """Slack's Block Kit limits (block and element reference pages)."""
    assert len(blocks) <= max_blocks
    for block in blocks:
        assert len(block.get("block_id", "")) <= 255
        kind = block["type"]
        if kind == "section":
            if "text" in block:
                assert 1 <= len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            for f in block.get("fields", []):
                assert len(f["text"]) <= 2000
        if kind == "header":
            assert len(block["text"]["text"]) <= 150
        if kind == "context":
            assert 1 <= len(block["elements"]) <= 10
        if kind == "actions":
            assert 1 <= len(block["elements"]) <= 25
        if kind == "input":
            assert len(block["label"]["text"]) <= 2000
    for path, node in walk(blocks):
        if not isinstance(node, dict):
            continue
        if node.get("type") == "button":
            assert len(node["text"]["text"]) <= 75, path
            assert len(node.get("value", "")) <= 2000, path
        if "action_id" in node:
            assert len(node["action_id"]) <= 255, path
        is_option = "value" in node and isinstance(node.get("text"), dict) and "type" not in node
        if is_option:
            assert len(node["text"]["text"]) <= 75, path
            assert len(node["value"]) <= 150, path
        if isinstance(node.get("options"), list):
            assert len(node["options"]) <= 100, path
        if node.get("type") == "plain_text":
            assert node["text"], path


def assert_modal(view: dict[str, Any]) -> None:
    assert view["type"] == "modal"
    assert len(view["title"]["text"]) <= 24
    assert len(view.get("submit", {}).get("text", "")) <= 24
    assert len(view["close"]["text"]) <= 24
    assert len(view["private_metadata"]) <= 3000
    assert len(view["callback_id"]) <= 255
    assert_within_limits(view["blocks"], max_blocks=100)


def sample_card(status: str, **kw: Any) -> CardData:
    values: dict[str, Any] = {
        "broadcast_id": "7c1e2a9b-1111-2222-3333-444455556666",
        "name": "Holiday Sale",
        "status": status,
        "config_name": "main",
        "display_number": "+1 555 0100",
        "template_name": "holiday_promotion",
        "template_language": "en_US",
        "template_category": "MARKETING",
        "agent_name": "support",
        "created_by": "U0ANA",
        "counts": Counts(total=1000, pending=1000),
        "rate_mps": 80.0,
        "batch_size": 500,
        "batch_pause_seconds": 10.0,
        "eta_seconds": 22.5,
    }
    values.update(kw)
    return CardData(**values)


@pytest.mark.parametrize("status", list(card.STATUS_LABEL))
def test_the_card_fits_slack_limits_in_every_status_even_with_huge_values(status: str) -> None:
    data = sample_card(
        status,
        name=LONG,
        config_name=LONG,
        template_name=LONG,
        agent_name=LONG,
        status_reason=LONG,
        counts=Counts(total=10**9, pending=10**8, sent=9 * 10**8, failed=10**7),
        failures=tuple((LONG, 10**6) for _ in range(20)),
        last_import=LONG,
        scheduled_at=datetime(2026, 12, 20, 9, 0, tzinfo=UTC),
    )
    assert_within_limits(card_blocks(data), max_blocks=50)
    assert len(card.fallback_text(data)) < 40000


def test_a_draft_card_asks_for_a_csv_and_offers_every_set_up_button() -> None:
    blocks = card_blocks(sample_card("draft"))
    buttons = [e["text"]["text"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons == [
        "Add contacts",
        "CSV template",
        "Send test",
        "Send…",
        "Schedule…",
        "Edit…",
        "Report",
        "Duplicate",
        "Cancel",
    ]
    assert "Drop a CSV into this thread" in blocks[-1]["elements"][0]["text"]


def test_a_sending_card_shows_progress_metrics_eta_and_pause() -> None:
    counts = Counts(
        total=1000,
        pending=480,
        sent=500,
        delivered=450,
        read=300,
        responded=30,
        failed=20,
        opted_out=4,
    )
    blocks = card_blocks(
        sample_card("sending", counts=counts, failures=(("131026 Undeliverable", 20),))
    )
    text = str(blocks)
    assert "52.0%" in text and "ETA" in text and "Top failure reasons" in text
    fields = [f["text"] for b in blocks for f in b.get("fields", [])]
    assert "*Response rate*\n3.0% (responded ÷ total recipients)" in fields
    assert "*Opted out*\n4" in fields
    assert (
        "Delivery rate 90.0% (delivered ÷ sent) · Read rate 66.7% (read ÷ delivered) · "
        "Reply rate of delivered 6.7% (responded ÷ delivered)"
    ) in text
    buttons = [e["text"]["text"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["Pause", "Report", "Cancel"]


def test_a_completed_card_is_read_only_with_a_report_button() -> None:
    blocks = card_blocks(sample_card("completed", counts=Counts(total=10, sent=10, delivered=9)))
    buttons = [e["text"]["text"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons == ["Report", "Retry failed…", "Duplicate"]


def test_the_new_broadcast_modal_fits_with_a_hundred_configurations() -> None:
    configs = [modals.ConfigChoice(i, LONG, LONG, None, 80) for i in range(150)]
    template = modals.TemplateChoice(1, LONG, "en_US", "MARKETING", LONG)
    view = modals.new_broadcast_modal(
        configs, channel_id="C0CAMP", selected=configs[0], template=template
    )
    assert_modal(view)
    assert len(view["blocks"][1]["element"]["options"]) == 100


def test_every_other_modal_fits() -> None:
    assert_modal(modals.add_contacts_modal("b" * 36, LONG, 10**6))
    countries = tuple((f"+{code}", 10**6) for code in range(200, 450))  # every calling code
    summary = modals.SendSummary(
        "b" * 36, LONG, 10**6, LONG, LONG, 80.0, 500, 10.0, 3600.0, (LONG, LONG), countries
    )
    assert_modal(modals.send_confirm_modal(summary))
    assert_modal(
        modals.schedule_modal(
            "b" * 36,
            LONG,
            initial=datetime.now(UTC),
            user_tz="Europe/Madrid",
            current=datetime.now(UTC),
        )
    )
    params = [str(i) for i in range(1, 60)]
    assert_modal(modals.send_test_modal("b" * 36, LONG, params, {p: LONG for p in params}))
    assert_modal(modals.notice_modal("Not sent", LONG))


def test_lists_and_the_home_tab_fit() -> None:
    lines = [
        messages.BroadcastLine(f"id{i}", LONG, "sending", Counts(total=5, sent=3), "C0CAMP")
        for i in range(200)
    ]
    assert_within_limits(messages.broadcast_list(lines), max_blocks=50)
    assert_within_limits(home.home_view(lines, can_send=False)["blocks"], max_blocks=100)
    many = [(LONG, [(LONG, "en", "MARKETING", "APPROVED")] * 3) for _ in range(80)]
    assert_within_limits(messages.template_list(many), max_blocks=50)


def test_import_summary_counts_recipients_per_country_and_explains_missing_codes() -> None:
    summary = {
        "rows": 10,
        "accepted": 7,
        "invalid": 3,
        "invalid_by_reason": {"phone_no_country_code": 3},
        "accepted_by_country": {"+1": 2, "+44": 5},
    }
    text = messages.import_summary(summary, "list.csv", "<@U0ANA>")
    assert "By country: +44 GB 5 · +1 US 2." in text
    assert "Numbers without a country code are never guessed" in text
    many = {f"+{code}": 1 for code in (30, 31, 32, 33, 34, 36, 39, 40, 41, 43)}
    assert messages.countries_text(many).endswith("2 more countries 2")


def test_humane_numbers() -> None:
    assert duration_text(0.2) == "under 1 s"
    assert duration_text(45) == "45 s"
    assert duration_text(3 * 3600 + 300) == "3 h 5 min"
    assert progress_bar(0.5, 10) == "█████░░░░░"
