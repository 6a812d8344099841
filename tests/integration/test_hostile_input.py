"""Hostile input through the real HTTP server: each numbered case of "hostile input" (and the
attacks that already failed) checked by status code, what was stored and what reached Slack
(the fake Slack API), WhatsApp (the sandbox) and agents."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from slack_bolt import BoltContext
from slack_sdk import WebClient
from sqlalchemy import func, select

from bot.slack import card_messages
from bot.slack.app import _on_error
from bot.slack.blocks import ids, modals, state
from bot.slack.client import make_client
from broadcasts.db import transaction
from broadcasts.models import AuditEntry, Broadcast, InboxEvent, Recipient, Template
from kapso.client import ApiTarget, WhatsAppClient
from kapso.errors import ErrorAction, WhatsAppError
from kapso.sandbox.config import SandboxConfig
from kapso.sandbox.runner import run_sandbox
from kapso.webhooks import sign
from tests.factories import add_recipients, make_broadcast, make_config
from tests.fakes import slack_payloads as p
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack, signature
from tests.fakes.slack_env import SlackEnv, slack_env

APP_SECRET = "meta-app-secret"
KAPSO_SECRET = "kapso-webhook-secret"
CAMP = "C0CAMP"
HOSTILE_NAME = "<!channel> *pwn* <http://evil|click>"


@pytest.fixture
def env(db_url: str, redis_url: str) -> Iterator[SlackEnv]:
    with slack_env(
        db_url,
        redis_url,
        broadcast_admins="U0BOSS",
        whatsapp_app_secret=APP_SECRET,
        kapso_webhook_secret=KAPSO_SECRET,
    ) as e:
        e.slack.set_members(CAMP, ["U0BOSS", "U0ANA", "U0MIA"])
        yield e


def card_for(env: SlackEnv, broadcast_id: str) -> str:
    with transaction(env.runtime.sessions) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        return card_messages.post_card(make_client(env.runtime.settings), session, broadcast, CAMP)


@pytest.fixture
def draft(env: SlackEnv) -> tuple[str, str]:
    """A draft with three recipients and its card in #C0CAMP: (broadcast id, card ts)."""
    with transaction(env.runtime.sessions) as session:
        broadcast = make_broadcast(session)
        add_recipients(session, broadcast, ["+14155550101", "+14155550102", "+14155550103"])
        broadcast_id = broadcast.id
    return broadcast_id, card_for(env, broadcast_id)


def status_of(env: SlackEnv, broadcast_id: str) -> str:
    with transaction(env.runtime.sessions) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        return str(broadcast.status)


def refusals(env: SlackEnv) -> list[tuple[str, str]]:
    with transaction(env.runtime.sessions) as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == "authz.refused"))
        return [(r.actor, str(r.detail.get("act"))) for r in rows]


def messages_to_anyone(env: SlackEnv) -> list[Any]:
    """Messages and ephemerals the bot sent, other than broadcast cards."""
    calls = env.slack.calls_to("chat.postMessage") + env.slack.calls_to("chat.postEphemeral")
    return [c for c in calls if not str(c.params.get("text", "")).startswith("Broadcast ")]


def raw_request(base_url: str, head: str, body: bytes = b"") -> bytes:
    """Send a request byte for byte and return the first bytes of the answer (no client
    library in between, so a declared length can be a lie)."""
    host, port = urllib.parse.urlsplit(base_url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        return sock.recv(4096)


@contextmanager
def catcher() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A listener that is not Slack, serving a CSV and recording who asked with what headers."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            return

        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            body = b"phone_number,param1\n+14155550199,Mallory\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/files-pri/T0/people.csv", seen
    finally:
        server.shutdown()
        server.server_close()


# -- 1. credentials go only where they belong ---------------------------------------------------


def test_1_the_bot_token_is_never_sent_to_a_download_address_off_slack(
    env: SlackEnv, draft: tuple[str, str]
) -> None:
    broadcast_id, ts = draft
    with catcher() as (url, seen):
        file = env.slack.add_file("people.csv", b"ignored", download_url=url)
        assert env.sender.event(p.file_share(file, channel=CAMP, thread_ts=ts)).status_code == 200
        env.work()
        assert seen == []  # not even asked, let alone with the token
    texts = [m.text for m in env.slack.messages_in(CAMP, ts)]
    assert any("not on Slack's file servers" in t for t in texts), texts
    with transaction(env.runtime.sessions) as session:
        count = session.scalar(select(func.count()).where(Recipient.broadcast_id == broadcast_id))
    assert count == 3  # nothing imported


# -- 2 and 9. one authorisation rule --------------------------------------------------------------


def test_2_send_test_is_refused_to_non_admins_at_the_button_and_at_the_submission(
    env: SlackEnv,
) -> None:
    with run_sandbox(SandboxConfig(latency_ms=1)) as sb:
        with transaction(env.runtime.sessions) as session:
            make_config(session, "live", api_base_url=sb.base_url)
            broadcast = make_broadcast(session, "Live sale", config="live")
            broadcast_id = broadcast.id
        card_for(env, broadcast_id)
        env.sender.interaction(p.button(ids.CARD_SEND_TEST, broadcast_id, user="U0EVE"))
        told = env.slack.wait_for(lambda: env.slack.calls_to("chat.postEphemeral"))[0]
        assert told.params["user"] == "U0EVE"
        assert told.params["text"].startswith("Only broadcast admins can send a test")
        assert env.slack.calls_to("views.open") == []
        # The modal's submission, made without the button (a stale modal, a crafted payload).
        view = state.with_origin(modals.send_test_modal(broadcast_id, "Live sale", ["1"], {}), CAMP)
        values = {
            ids.B_PHONE: p.text(ids.A_PHONE, "+14155550188"),
            f"{ids.B_PARAM}1": p.text(ids.A_PARAM, "your own words"),
        }
        answer = env.sender.interaction(p.submission(view, values, user="U0EVE")).json()
        assert answer["response_action"] == "errors"
        assert "Only broadcast admins" in answer["errors"][ids.B_PHONE]
        assert sb.messages() == []  # nothing reached WhatsApp
        assert refusals(env) == [("U0EVE", "test_send"), ("U0EVE", "test_send")]
        # The same submission by an admin sends (so the refusal above is the rule, not a fault).
        answer = env.sender.interaction(p.submission(view, values, user="U0BOSS")).json()
        assert answer["response_action"] == "update", answer
        # The answer is the "sending" notice; WhatsApp is called after it.
        env.slack.wait_for(sb.messages, timeout=30)
        assert len(sb.messages()) == 1


def test_9_pause_is_for_members_of_the_card_channel_and_admins(
    env: SlackEnv, draft: tuple[str, str]
) -> None:
    broadcast_id, _ = draft
    env.sender.interaction(p.button(ids.CARD_SEND, broadcast_id, user="U0BOSS"))
    view = env.slack.wait_for(lambda: env.slack.calls_to("views.open"))[0].params["view"]
    assert env.sender.interaction(p.submission(view, {}, user="U0BOSS")).status_code == 200
    assert status_of(env, broadcast_id) == "sending"
    # A stranger, from another channel, by command and by a forged button elsewhere.
    reply = env.sender.command(f"pause {broadcast_id[:8]}", user="U0EVE", channel="C0ELSE").json()
    assert reply["response_type"] == "ephemeral"
    assert reply["text"].startswith("Only broadcast admins and members of <#C0CAMP>")
    env.sender.interaction(p.button(ids.CARD_PAUSE, broadcast_id, user="U0EVE", channel="C0ELSE"))
    env.slack.wait_for(lambda: len(refusals(env)) == 2)
    assert status_of(env, broadcast_id) == "sending"  # changed nothing
    assert refusals(env) == [("U0EVE", "pause"), ("U0EVE", "pause")]
    # A member of the card's channel may pause from anywhere.
    reply = env.sender.command(f"pause {broadcast_id[:8]}", user="U0MIA", channel="C0ELSE").json()
    assert reply["text"].startswith("Paused"), reply
    assert status_of(env, broadcast_id) == "paused"
    # Resume spends: members are not enough.
    reply = env.sender.command(f"resume {broadcast_id[:8]}", user="U0MIA", channel=CAMP).json()
    assert reply["text"].startswith("Only broadcast admins can resume")
    assert status_of(env, broadcast_id) == "paused"


def test_9_follow_ups_are_for_members_of_the_card_channel_and_admins(
    env: SlackEnv, draft: tuple[str, str]
) -> None:
    broadcast_id, _ = draft
    short = broadcast_id[:8]

    def broadcasts() -> int:
        with transaction(env.runtime.sessions) as session:
            return int(session.scalar(select(func.count()).select_from(Broadcast)) or 0)

    # A stranger, from another channel: Edit…, Duplicate and Retry failed… buttons.
    for action in (ids.CARD_EDIT, ids.CARD_DUPLICATE, ids.CARD_RETRY):
        env.sender.interaction(p.button(action, broadcast_id, user="U0EVE", channel="C0ELSE"))
    env.slack.wait_for(lambda: len(env.slack.calls_to("chat.postEphemeral")) == 3)
    told = env.slack.calls_to("chat.postEphemeral")
    for call in told:
        assert call.params["user"] == "U0EVE"
        assert call.params["text"].startswith("Only broadcast admins and members of <#C0CAMP>")
    assert env.slack.calls_to("views.open") == []
    # … and the same by command; the audit trail is a report.
    for verb in ("edit", "duplicate", "retry", "audit"):
        reply = env.sender.command(f"{verb} {short}", user="U0EVE", channel="C0ELSE").json()
        assert reply["response_type"] == "ephemeral"
        assert reply["text"].startswith("Only broadcast admins and members of <#C0CAMP>"), reply
    assert env.slack.calls_to("views.open") == []
    assert broadcasts() == 1  # no copy, no retry
    assert refusals(env) == [("U0EVE", "edit")] * 6 + [("U0EVE", "report")]
    # Submissions made without the button (a stale modal, a crafted payload) are refused too.
    env.sender.interaction(p.button(ids.CARD_EDIT, broadcast_id, user="U0MIA"))
    edit = env.slack.wait_for(lambda: env.slack.calls_to("views.open"))[0].params["view"]
    assert state.origin(edit) == CAMP
    forged = state.with_origin(edit, "C0ELSE")
    name = {ids.B_EDIT_NAME: p.text(ids.A_EDIT_NAME, "Renamed")}
    answer = env.sender.interaction(p.submission(forged, name, user="U0EVE")).json()
    assert answer["response_action"] == "errors"
    assert "Only broadcast admins and members" in answer["errors"][ids.B_EDIT_NAME]
    retry = state.with_origin(modals.retry_confirm_modal(broadcast_id, "x", 3, "3 to retry."), "X")
    answer = env.sender.interaction(p.submission(retry, {}, user="U0EVE")).json()
    assert answer["response_action"] == "update"
    assert "Only broadcast admins and members" in json.dumps(answer["view"])
    assert broadcasts() == 1
    with transaction(env.runtime.sessions) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast is not None and broadcast.name == "Holiday Sale"
    assert refusals(env)[-2:] == [("U0EVE", "edit"), ("U0EVE", "edit")]
    # A member of the card's channel may duplicate from anywhere (sending the copy is the admins').
    env.sender.interaction(p.button(ids.CARD_DUPLICATE, broadcast_id, user="U0MIA", channel="X"))
    deadline = time.monotonic() + 20  # not inside wait_for: the copy's transaction calls Slack
    while broadcasts() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert broadcasts() == 2


def test_9_modal_values_slack_never_sends_are_field_errors_not_500s(
    env: SlackEnv, draft: tuple[str, str]
) -> None:
    broadcast_id, _ = draft
    new_view = modals.new_broadcast_modal([], channel_id=CAMP)
    values = {
        ids.B_NAME: p.text(ids.A_NAME, "Sale"),
        ids.B_CONFIG: p.select(ids.A_CONFIG, "abc"),
        ids.B_CHANNEL: p.conversation(ids.A_CHANNEL, CAMP),
    }
    reply = env.sender.interaction(p.submission(new_view, values, user="U0BOSS"))
    assert reply.status_code == 200
    assert reply.json()["response_action"] == "errors"
    assert ids.B_CONFIG in reply.json()["errors"]
    schedule = state.with_origin(
        modals.schedule_modal(broadcast_id, "Holiday Sale", initial=_now(), user_tz=None), CAMP
    )
    when = {ids.B_WHEN: {ids.A_WHEN: {"type": "datetimepicker", "selected_date_time": 10**13}}}
    reply = env.sender.interaction(p.submission(schedule, when, user="U0BOSS"))
    assert reply.status_code == 200
    assert reply.json()["errors"][ids.B_WHEN].startswith("That is not a date and time")
    assert status_of(env, broadcast_id) == "draft"
    assert messages_to_anyone(env) == []  # no "error ref" DM


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


# -- 3, 4, 5. every route bounds, verifies and parses before it acts -----------------------------


def test_3_slack_route_answers_413_from_the_declared_length_without_waiting_for_the_body(
    env: SlackEnv,
) -> None:
    head = (
        "POST /slack/events HTTP/1.1\nHost: bot\n"
        "Content-Type: application/x-www-form-urlencoded\nContent-Length: 200000000\n"
    )
    # Only 1 KB of the announced 200 MB follows: reading first would wait for the rest forever.
    answer = raw_request(env.base_url, head, b"a" * 1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]


def test_3_a_streamed_slack_body_over_the_limit_is_refused_and_nothing_acts(env: SlackEnv) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 65536  # 2.5 MB, no Content-Length (chunked)

    try:
        reply = httpx.post(
            env.sender.url,
            content=chunks(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=30,
        )
        assert reply.status_code == 413
    except httpx.HTTPError:
        pass  # the server may close the connection while the client is still sending
    assert messages_to_anyone(env) == []


def test_healthz_and_metrics_never_read_a_body(env: SlackEnv) -> None:
    head = "GET /healthz HTTP/1.1\nHost: bot\nContent-Length: 200000000\n"
    assert raw_request(env.base_url, head, b"a" * 1024).startswith(b"HTTP/1.1 200")


def test_4_a_non_numeric_slack_timestamp_is_a_400_and_nobody_is_messaged(env: SlackEnv) -> None:
    form = {
        "command": "/broadcast",
        "text": "status nothing",
        "user_id": "U0VICTIM",
        "channel_id": "C0VICTIM",
        "trigger_id": "t",
    }
    body = urllib.parse.urlencode(form)
    reply = env.sender.post(
        body,
        "application/x-www-form-urlencoded",
        headers={"X-Slack-Request-Timestamp": "not-a-number"},
    )
    assert reply.status_code == 400
    assert messages_to_anyone(env) == []
    payload = json.dumps({"type": "block_actions", "user": {"id": "U0VICTIM"}})
    for stamp in ("1e9", "-5", "1.5", "99999999999999999999"):
        reply = env.sender.post(
            urllib.parse.urlencode({"payload": payload}),
            "application/x-www-form-urlencoded",
            headers={"X-Slack-Request-Timestamp": stamp},
        )
        assert reply.status_code in (400, 401), (stamp, reply.status_code)
    assert messages_to_anyone(env) == []


def test_4_the_error_handler_tells_nobody_about_an_unverified_request() -> None:
    with FakeSlack() as slack:
        context = BoltContext({"client": WebClient(token=BOT_TOKEN, base_url=slack.api_url)})
        body = {"user_id": "U0VICTIM", "channel_id": "C0VICTIM"}
        _on_error(ValueError("boom"), body, context)
        assert slack.calls_to("chat.postEphemeral") == []
        context["verified"] = True  # set by our middleware, after Bolt's signature check
        _on_error(ValueError("boom"), body, context)
        [told] = slack.calls_to("chat.postEphemeral")
        assert told.params["user"] == "U0VICTIM"


def _deep(levels: int) -> bytes:
    return b'{"object":"whatsapp_business_account","entry":' + b"[" * levels + b"]" * levels + b"}"


def test_5_deeply_nested_signed_json_is_a_400_on_every_route_and_nothing_is_stored(
    env: SlackEnv,
) -> None:
    raw = _deep(100_000)
    meta = httpx.post(
        env.base_url + "/webhooks/whatsapp",
        content=raw,
        headers={"X-Hub-Signature-256": "sha256=" + sign(raw, APP_SECRET)},
        timeout=30,
    )
    assert meta.status_code == 400
    kapso = httpx.post(
        env.base_url + "/webhooks/kapso",
        content=raw,
        headers={"X-Webhook-Signature": sign(raw, KAPSO_SECRET), "X-Webhook-Event": "x"},
        timeout=30,
    )
    assert kapso.status_code == 400
    event = b'{"type":"event_callback","event":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    slack = env.sender.post(event.decode(), "application/json")
    assert slack.status_code == 400
    with transaction(env.runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(InboxEvent)) == 0
    assert messages_to_anyone(env) == []


def test_forged_stale_and_replayed_requests_are_refused_everywhere(
    env: SlackEnv, draft: tuple[str, str]
) -> None:
    broadcast_id, _ = draft
    assert env.sender.command("help", secret="wrong").status_code == 401
    assert env.sender.command("help", timestamp=int(time.time()) - 600).status_code == 401
    # A request captured and replayed later, signature and all.
    form = urllib.parse.urlencode({"command": "/broadcast", "text": "help", "user_id": "U0ANA"})
    old = str(int(time.time()) - 3600)
    replay = httpx.post(
        env.sender.url,
        content=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": old,
            "X-Slack-Signature": signature("fake-signing-secret", old, form),
        },
    )
    assert replay.status_code == 401
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    forged = httpx.post(
        env.base_url + "/webhooks/whatsapp",
        content=body,
        headers={"X-Hub-Signature-256": "sha256=" + sign(body, "not-the-secret")},
    )
    assert forged.status_code == 401
    not_json = b"<xml/>"
    bad = httpx.post(
        env.base_url + "/webhooks/whatsapp",
        content=not_json,
        headers={"X-Hub-Signature-256": "sha256=" + sign(not_json, APP_SECRET)},
    )
    assert bad.status_code == 400
    head = "POST /webhooks/whatsapp HTTP/1.1\nHost: bot\nContent-Length: 200000000\n"
    assert raw_request(env.base_url, head, b"{").startswith(b"HTTP/1.1 413")
    assert status_of(env, broadcast_id) == "draft"
    with transaction(env.runtime.sessions) as session:
        assert session.scalar(select(func.count()).select_from(InboxEvent)) == 0


# -- 7. user text is inert in Slack ----------------------------------------------------------------


def test_7_a_hostile_broadcast_name_is_escaped_in_the_card_text_header_and_replies(
    env: SlackEnv,
) -> None:
    with transaction(env.runtime.sessions) as session:
        config_id = make_config(session).id
        template_id = session.scalar(
            select(Template.id).where(Template.name == "holiday_promotion")
        )
    view = modals.new_broadcast_modal([], channel_id=CAMP)
    values = {
        ids.B_NAME: p.text(ids.A_NAME, HOSTILE_NAME),
        ids.B_CONFIG: p.select(ids.A_CONFIG, str(config_id)),
        modals.template_block_id(config_id): p.select(ids.A_TEMPLATE, str(template_id)),
        ids.B_CHANNEL: p.conversation(ids.A_CHANNEL, CAMP),
    }
    reply = env.sender.interaction(p.submission(view, values, user="U0ANA"))
    assert reply.status_code == 200 and reply.content in (b"", b"{}"), reply.content
    [posted] = env.slack.wait_for(lambda: env.slack.calls_to("chat.postMessage"))
    sent = json.dumps(posted.params, ensure_ascii=False)
    for raw in ("<!channel>", "<http://evil|click>"):
        assert raw not in sent
    assert "&lt;!channel&gt; *pwn* &lt;http://evil|click&gt;" in posted.params["text"]
    header = posted.params["blocks"][0]["text"]["text"]
    assert "&lt;!channel&gt;" in header
    with transaction(env.runtime.sessions) as session:
        stored = session.scalar(select(Broadcast.name))
    assert stored == HOSTILE_NAME  # stored as typed; only its rendering is escaped
    listing = env.sender.command("list", user="U0ANA").json()
    assert "<!channel>" not in json.dumps(listing)


# -- 8. the report neutralises every cell ---------------------------------------------------------


def test_8_the_report_neutralises_webhook_supplied_wamid_and_wa_id(
    env: SlackEnv, draft: tuple[str, str]
) -> None:
    broadcast_id, ts = draft
    with transaction(env.runtime.sessions) as session:
        first = session.scalars(
            select(Recipient).where(Recipient.broadcast_id == broadcast_id).order_by(Recipient.id)
        ).first()
        assert first is not None
        first.wamid = '=HYPERLINK("http://evil","x")'
        first.wa_id = "@SUM(1)"
    reply = env.sender.command(f"report {broadcast_id[:8]}", user="U0ANA").json()
    assert reply["text"].startswith("Building the report"), reply
    env.work()
    upload = next(u for u in env.slack.uploads_in(CAMP, ts) if u.filename.endswith(".csv"))
    rows = list(csv.DictReader(io.StringIO(upload.content.decode())))
    assert rows[0]["wamid"] == '\'=HYPERLINK("http://evil","x")'
    assert rows[0]["wa_id"] == "'@SUM(1)"
    assert rows[0]["phone_number"] == "+14155550101"  # E.164 numbers stay readable
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "@", "-")), cell


# -- 11. refused requests are logged once, briefly -------------------------------------------------


def test_11_refused_requests_are_logged_once_without_their_body(
    env: SlackEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    marker = "BODYMARKER"
    body = (marker * (900 * 1024 // len(marker))).encode()
    for _ in range(5):
        reply = httpx.post(
            env.sender.url,
            content=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": str(int(time.time())),
                "X-Slack-Signature": "v0=" + "0" * 64,
            },
            timeout=30,
        )
        assert reply.status_code == 401
    client_side = ("httpx", "httpcore")  # this test's own HTTP client
    logged = [r.getMessage() for r in caplog.records if not r.name.startswith(client_side)]
    assert sum(len(m) for m in logged) < 5 * 300, [m[:200] for m in logged]
    assert not any(marker in m for m in logged)
    refused = [m for m in logged if m.startswith("refused /slack/events")]
    assert len(refused) == 5
    assert "bad or missing X-Slack-Signature" in refused[0] and str(len(body)) in refused[0]


def test_slack_s_unsigned_ssl_check_is_answered_and_acts_on_nothing(env: SlackEnv) -> None:
    form = urllib.parse.urlencode({"ssl_check": "1", "token": "legacy", "text": "cancel x"})
    reply = httpx.post(
        env.sender.url, content=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert reply.status_code == 200 and reply.content == b""
    assert messages_to_anyone(env) == []


def test_1_the_whatsapp_key_follows_no_redirect_and_no_path_out_of_the_api_base() -> None:
    with catcher() as (elsewhere, seen):

        class Redirector(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                return

            def do_POST(self) -> None:
                self.send_response(307)
                self.send_header("Location", elsewhere)
                self.send_header("Content-Length", "0")
                self.end_headers()

        server = ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}/v24.0"
        try:
            for phone_number_id in ("100200300", "../../elsewhere"):
                target = ApiTarget("main", "kapso", base, phone_number_id, "900", "the-key")

                async def send(target: ApiTarget = target) -> None:
                    async with WhatsAppClient(max_in_flight=1) as client:
                        await client.send_text(target, to="+14155550101", body="hi")

                with pytest.raises(WhatsAppError) as refused:
                    asyncio.run(send())
                assert "Refused to send the API key" in str(refused.value)
                # Reported as a refused key: it stops (fails) the broadcast, no recipient fails.
                assert refused.value.action is ErrorAction.FAIL_BROADCAST
        finally:
            server.shutdown()
            server.server_close()
        assert seen == []
