"""The pure checks behind the hostile-input rules: where credentials may go, which agent URLs
are allowed, Slack request verification, modal values and mrkdwn escaping."""

from __future__ import annotations

import io
import logging
import time
from datetime import UTC, datetime

import pytest
from slack_sdk import WebClient

from bot.http.slack_routes import Refusal, verify
from bot.ops.logs import configure_logging
from bot.slack.agent_threads import header_text, message_text
from bot.slack.authz import Authoriser
from bot.slack.blocks import ids, state
from bot.slack.blocks.card import CardData, card_blocks, fallback_text
from bot.slack.blocks.kit import escape, escape_keeping_mentions
from bot.slack.blocks.state import FieldError
from bot.slack.files import token_may_go_to
from broadcasts.errors import NotAuthorised, ValidationFailed
from broadcasts.metrics import Counts
from broadcasts.urls import check_agent_url, mask_credentials
from kapso.client import within_base
from tests.fakes.slack_api import signature

API = "https://slack.com/api/"
FAKE_API = "http://127.0.0.1:4567/api/"


@pytest.mark.parametrize(
    ("url", "api", "allowed"),
    [
        ("https://files.slack.com/files-pri/T1-F1/download/a.csv", API, True),
        ("https://files.slack-gov.com/files-pri/T1-F1/a.csv", API, True),
        ("http://files.slack.com/files-pri/T1-F1/a.csv", API, False),  # not https
        ("https://files.slack.com.evil.example/a.csv", API, False),
        ("https://evil.example/files.slack.com/a.csv", API, False),
        ("https://user@files.slack.com/a.csv", API, False),
        ("https://files.slack.com:8443/a.csv", API, False),
        ("http://127.0.0.1:4567/files/F1/a.csv", FAKE_API, True),  # the configured host
        ("http://127.0.0.1:4568/files/F1/a.csv", FAKE_API, False),  # another port
        ("http://169.254.169.254/latest", API, False),
        ("not a url", API, False),
    ],
)
def test_the_bot_token_goes_only_to_slack_file_hosts_or_the_configured_api(
    url: str, api: str, allowed: bool
) -> None:
    assert token_may_go_to(url, api) is allowed


@pytest.mark.parametrize(
    ("path", "inside"),
    [
        ("100200300/messages", True),
        ("900800700/message_templates", True),
        ("x/../../../other/messages", False),
        ("%2e%2e/%2e%2e/x", False),
    ],
)
def test_the_whatsapp_key_stays_under_the_configuration_api_base(path: str, inside: bool) -> None:
    base = "https://api.kapso.ai/meta/whatsapp/v24.0"
    assert within_base(f"{base}/{path}", base) is inside


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:169.254.169.254]/",
        "https://0251.0376.0251.0376/",  # 169.254.169.254 in octal
        "http://metadata.google.internal/",
        "https://10.0.0.8/a",
        "https://192.168.1.1/a",
        "https://127.0.0.1/a",
        "https://0x7f.1/a",
        "https://2130706433/a",
        "https://[::1]/a",
        "https://[fe80::1]/a",
        "https://localhost/a",
        "https://agent.internal/a",
        "https://agent/a",
        "http://agents.example.com/a",
        "ftp://agents.example.com/a",
        "https://agents.example.com:bad/a",
    ],
)
def test_agent_urls_inside_the_network_or_without_tls_are_refused(url: str) -> None:
    with pytest.raises(ValidationFailed):
        check_agent_url(url)


def test_public_https_agents_pass_and_the_setting_admits_local_ones_but_not_metadata() -> None:
    assert check_agent_url(" https://agents.example.com/in ") == "https://agents.example.com/in"
    assert check_agent_url("http://127.0.0.1:9/a", allow_private=True) == "http://127.0.0.1:9/a"
    with pytest.raises(ValidationFailed, match="metadata"):
        check_agent_url("http://169.254.169.254/", allow_private=True)


def test_credentials_in_urls_are_masked() -> None:
    assert mask_credentials("https://u:p@h.example/x?api_key=1&a=2") == (
        "https://***@h.example/x?api_key=***&a=2"
    )
    assert mask_credentials("https://h.example/x") == "https://h.example/x"
    assert mask_credentials(None) == ""


def test_connection_urls_are_masked_and_otherwise_shown_as_given() -> None:
    assert mask_credentials("postgresql+psycopg://bot:s3cret@db:5432/prod") == (
        "postgresql+psycopg://***@db:5432/prod"
    )
    assert mask_credentials("redis://:s3cret@cache:6379/0") == "redis://***@cache:6379/0"
    assert mask_credentials("sqlite:///./broadcasts.db") == "sqlite:///./broadcasts.db"


SECRET = "signing-secret"


def _headers(stamp: str, body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {
        "x-slack-request-timestamp": stamp,
        "x-slack-signature": signature(secret, stamp, body.decode()),
    }


def test_slack_verification_accepts_slack_signatures_and_refuses_the_rest() -> None:
    now = time.time()
    body = b"command=%2Fbroadcast&text=help"
    stamp = str(int(now))
    verify(_headers(stamp, body), body, SECRET, now)
    cases = [
        ({"x-slack-request-timestamp": "abc", "x-slack-signature": "v0=0"}, 400),
        ({"x-slack-request-timestamp": "1e9", "x-slack-signature": "v0=0"}, 400),
        ({"x-slack-signature": "v0=0"}, 401),
        (_headers(str(int(now) - 301), body), 401),  # replayed after five minutes
        (_headers(stamp, body, "other"), 401),
        ({**_headers(stamp, body), "x-slack-signature": "v0=é"}, 401),
    ]
    for headers, status in cases:
        with pytest.raises(Refusal) as refused:
            verify(headers, body, SECRET, now)
        assert refused.value.status == status, headers


def _view(values: dict[str, dict[str, object]]) -> dict[str, object]:
    return {"state": {"values": values}}


@pytest.mark.parametrize(
    ("values", "block"),
    [
        ({ids.B_CONFIG: {ids.A_CONFIG: {"selected_option": {"value": "abc"}}}}, ids.B_CONFIG),
        ({ids.B_CONFIG: {ids.A_CONFIG: {"selected_option": {"value": "²"}}}}, ids.B_CONFIG),
        ({"template_1": {ids.A_TEMPLATE: {"selected_option": {"value": "1;"}}}}, "template_1"),
        ({ids.B_RATE: {ids.A_RATE: {"value": "nan"}}}, ids.B_RATE),
        ({ids.B_RATE: {ids.A_RATE: {"value": "1e400"}}}, ids.B_RATE),
        ({ids.B_BATCH_SIZE: {ids.A_BATCH_SIZE: {"value": "9" * 40}}}, ids.B_BATCH_SIZE),
    ],
)
def test_new_broadcast_values_slack_never_sends_are_field_errors(
    values: dict[str, dict[str, object]], block: str
) -> None:
    with pytest.raises(FieldError) as error:
        state.new_broadcast(_view(values))
    assert error.value.block_id == block
    state.new_broadcast_partial(_view(values))  # the live redraw ignores them instead


@pytest.mark.parametrize("raw", [10**13, -(10**13), "soon", None])
def test_schedule_times_the_picker_never_gives_are_field_errors(raw: object) -> None:
    view = _view({ids.B_WHEN: {ids.A_WHEN: {"selected_date_time": raw}}})
    with pytest.raises(FieldError) as error:
        state.schedule_at(view)
    assert error.value.block_id == ids.B_WHEN


def test_contact_choices_keep_only_ascii_ids() -> None:
    view = _view(
        {
            ids.B_CONTACTS: {
                ids.A_CONTACTS: {"selected_options": [{"value": "12"}, {"value": "²"}, {}]}
            }
        }
    )
    assert state.add_contacts(view).contact_ids == [12]


HOSTILE = "<!channel> *pwn* <http://evil|click> & co"


def test_escape_makes_mentions_and_links_inert() -> None:
    assert escape(HOSTILE) == "&lt;!channel&gt; *pwn* &lt;http://evil|click&gt; &amp; co"


def test_every_user_text_on_the_card_is_escaped() -> None:
    card = CardData(
        broadcast_id="b" * 36,
        name=HOSTILE,
        status="sending",
        config_name="<!here>",
        template_name="<@U0EVIL>",
        template_language="en",
        template_category="MARKETING",
        agent_name="<#C0EVIL>",
        created_by="U0ANA",
        counts=Counts(total=1),
        rate_mps=1,
        batch_size=1,
        batch_pause_seconds=0,
        display_number="<tel:1>",
        failures=(("<!everyone> failed", 1),),
        last_import="`<!channel>.csv`",
        scheduled_at=datetime(2030, 1, 1, tzinfo=UTC),
    )
    rendered = repr(card_blocks(card)) + fallback_text(card)
    for raw in ("<!channel>", "<!here>", "<@U0EVIL>", "<#C0EVIL>", "<!everyone>", "<http", "<tel"):
        assert raw not in rendered, raw
    assert "<@U0ANA>" in rendered  # mentions we build stay mentions


def test_agent_threads_show_a_contact_s_words_inertly() -> None:
    payload = {
        "contact": {"name": "<!channel>", "phone": "+14155550101"},
        "broadcast_context": {"broadcast_name": "<!here>", "template_name": "t"},
        "message": {"text": "hi <!channel> <https://evil|login>"},
    }
    for text in (header_text(payload), message_text(payload)):
        assert "<!" not in text and "<https" not in text


def test_typed_agent_lines_and_what_was_received_show_user_text_inertly() -> None:
    lines = [
        message_text({"message": {"kind": "document", "media": {"filename": "<!here>.pdf"}}}),
        message_text({"message": {"kind": "contacts", "contacts": [{"name": "<@U0EVIL>"}]}}),
        message_text({"message": {"kind": "location", "location": {"name": "<#C0EVIL>"}}}),
        message_text({"message": {"kind": "edit", "text": "<!channel>"}}),
        header_text(
            {
                "contact": {"phone": "+14155550101"},
                "broadcast_context": {"rendered_content": "<!everyone>", "is_test": True},
            }
        ),
    ]
    for text in lines:
        assert "<!" not in text and "<@" not in text and "<#" not in text, text


def test_bolt_s_full_body_log_of_refused_requests_is_silenced() -> None:
    root = logging.getLogger()
    bolt = logging.getLogger("slack_bolt.RequestVerification")
    saved = list(root.handlers), root.level, bolt.level
    stream = io.StringIO()
    try:
        configure_logging(None, level="DEBUG", stream=stream, environ={})
        bolt.setLevel(logging.DEBUG)  # what Bolt does: it copies the root's level onto its loggers
        bolt.info("Invalid request signature detected (body: SECRETBODY)")
        bolt.warning("something Bolt warns about")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        bolt.setLevel(saved[2])
    assert "SECRETBODY" not in stream.getvalue()
    assert "something Bolt warns about" in stream.getvalue()


def test_error_sentences_keep_our_mentions_live_and_nothing_else() -> None:
    sentence = (
        "Only broadcast admins can send a broadcast (<@U0BOSS>, <!subteam^S0ADMINS>) in <#C0CAMP>;"
        " broadcast '<!channel> <http://evil|x>' is draft."
    )
    shown = escape_keeping_mentions(sentence)
    assert "<@U0BOSS>" in shown and "<!subteam^S0ADMINS>" in shown and "<#C0CAMP>" in shown
    assert "<!channel>" not in shown and "<http" not in shown
    assert "&lt;!channel&gt; &lt;http://evil|x&gt;" in shown


def test_the_admin_half_of_the_rule_names_the_admins() -> None:
    authz = Authoriser(frozenset({"U0BOSS"}), WebClient(token="xoxb-unused"))
    authz.require("U0BOSS", "send")
    with pytest.raises(
        NotAuthorised, match=r"Only broadcast admins can send a broadcast \(<@U0BOSS>\)"
    ):
        authz.require("U0EVE", "send")
    Authoriser(frozenset(), WebClient(token="xoxb-unused")).require("U0EVE", "send")
