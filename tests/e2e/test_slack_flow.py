"""From `/broadcast new` to the final card: Slack (fake API, signed requests to our HTTP server),
the sandbox WhatsApp API posting signed webhooks back, and in-process RQ workers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from rq import SimpleWorker

from bot.slack.blocks import ids
from broadcasts import configs
from broadcasts.db import transaction
from broadcasts.metrics import Counts, recount, stored_counts
from broadcasts.models import Broadcast
from jobs import maintenance
from jobs.queues import ALL, SLACK, queue
from jobs.whatsapp_sync import sync_templates
from kapso.sandbox.config import SandboxConfig
from kapso.sandbox.runner import Sandbox, run_sandbox
from tests.factories import OPERATOR
from tests.fakes import slack_payloads as p
from tests.fakes.slack_env import SlackEnv, slack_env

APP_SECRET = "e2e-app-secret"
CHANNEL = "C0CAMP"
AGENTS = "C0AGENTS"
GOOD = [f"+1415555{n:04d}" for n in range(1001, 1009)]  # 8 numbers the sandbox delivers to
UNDELIVERABLE = "+14155552026"  # the sandbox fails numbers ending in 026 with 131026
CSV = "phone_number,param1\n" + "".join(f"{n},Guest {i}\n" for i, n in enumerate(GOOD))
CSV += f"{UNDELIVERABLE},Ghost\nnot-a-number,Nobody\n{GOOD[0]},Twice\n"


def work_queues(env: SlackEnv, *names: str) -> None:
    redis = env.runtime.redis
    SimpleWorker([queue(name, redis) for name in names], connection=redis).work(
        burst=True, with_scheduler=True, logging_level="WARNING"
    )


def work(env: SlackEnv) -> None:
    work_queues(env, *ALL)


def until(env: SlackEnv, done: Callable[[], Any], what: str, limit: float = 90.0) -> Any:
    """Work and tend until `done()` holds; the limit is a generous bound, not a timing check."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        work(env)
        maintenance.run_once(env.runtime)
        value = done()
        if value:
            return value
        time.sleep(0.1)
    failed = {
        name: queue(name, env.runtime.redis).failed_job_registry.get_job_ids() for name in ALL
    }
    raise AssertionError(f"never reached: {what} (failed jobs: {failed})")


def broadcast(env: SlackEnv) -> Broadcast:
    with transaction(env.runtime.sessions) as session:
        found = session.query(Broadcast).one()
        session.expunge(found)
        return found


def texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def sandbox_for(env: SlackEnv, *, read_rate: float, reply_rate: float) -> SandboxConfig:
    """A quick sandbox posting signed status webhooks to the app under test."""
    return SandboxConfig(
        latency_ms=5,
        throughput=1000,
        pair_rate=False,
        webhook_url=f"{env.base_url}/webhooks/whatsapp",
        app_secret=APP_SECRET,
        speed=20.0,
        read_rate=read_rate,
        reply_rate=reply_rate,
        seed=7,
    )


def add_main_config(env: SlackEnv, sb: Sandbox, *, batch_size: int) -> None:
    """Configuration "main" on the sandbox, replies to agent "support", templates synced."""
    with transaction(env.runtime.sessions) as session:
        configs.add_config(
            session,
            name="main",
            provider="sandbox",
            phone_number_id="100200300",
            business_account_id="900800700",
            api_base_url=sb.base_url,
            credential_env="KAPSO_API_KEY",
            agent="support",
            throughput_mps=50,
            batch_size=batch_size,
            batch_pause_seconds=0,
            by=OPERATOR,
        )
    sync_templates(env.runtime, "main")


def test_a_broadcast_from_slash_command_to_the_final_card(db_url: str, redis_url: str) -> None:
    with (
        slack_env(db_url, redis_url, whatsapp_app_secret=APP_SECRET) as env,
        run_sandbox(sandbox_for(env, read_rate=1.0, reply_rate=0.5)) as sb,
    ):
        with transaction(env.runtime.sessions) as session:
            configs.add_agent(session, name="support", kind="slack", channel_id=AGENTS, by=OPERATOR)
        add_main_config(env, sb, batch_size=4)
        run_flow(env, sb)


def run_flow(env: SlackEnv, sb: Sandbox) -> None:
    slack, sender = env.slack, env.sender
    # 1. /broadcast new opens the modal; the template menu lists approved templates.
    assert sender.command("new", channel=CHANNEL).status_code == 200
    view = slack.wait_for(lambda: slack.calls_to("views.open"))[-1].params["view"]
    view = {**view, "id": "V0NEW", "hash": "h"}
    options = sender.interaction(p.block_suggestion(ids.A_TEMPLATE, view, "holiday")).json()
    holiday = next(o for o in options["options"] if o["text"]["text"].startswith("holiday_promo"))
    config_id = json.loads(view["private_metadata"])["config"]
    # 2. Submitting posts the draft card in the channel.
    values = {
        ids.B_NAME: p.text(ids.A_NAME, "Holiday Sale"),
        ids.B_CONFIG: p.select(ids.A_CONFIG, str(config_id)),
        f"template_{config_id}": p.select(ids.A_TEMPLATE, holiday["value"]),
        ids.B_CHANNEL: p.conversation(ids.A_CHANNEL, CHANNEL),
        ids.B_RATE: p.number(ids.A_RATE, None),
        ids.B_BATCH_SIZE: p.number(ids.A_BATCH_SIZE, None),
        ids.B_BATCH_PAUSE: p.number(ids.A_BATCH_PAUSE, None),
    }
    assert sender.interaction(p.submission(view, values)).status_code == 200
    # The card is posted after the ack (Slack's 3 s deadline), then its ts is saved.
    b = slack.wait_for(lambda: (found := broadcast(env)).card_message_id and found)
    card_ts = b.card_message_id or ""
    draft = slack.message(CHANNEL, card_ts)
    assert "Draft" in draft.text and "Drop a CSV into this thread" in texts(draft.blocks)

    # 3. A CSV dropped in the card's thread is imported; the summary and error report follow.
    file = slack.add_file("guests.csv", CSV.encode())
    sender.event(p.file_share(file, channel=CHANNEL, thread_ts=card_ts))
    work(env)
    thread = [m.text for m in slack.messages_in(CHANNEL, card_ts)]
    assert any("*9 recipients added* from 11 rows" in t for t in thread), thread
    [report] = slack.uploads_in(CHANNEL, card_ts)
    assert b"not-a-number" in report.content
    assert "9 recipients" in slack.message(CHANNEL, card_ts).text

    # 4. Send… shows the confirmation; confirming starts sending.
    sender.interaction(p.button(ids.CARD_SEND, b.id, message_ts=card_ts))
    confirm = slack.wait_for(
        lambda: [
            c
            for c in slack.calls_to("views.open")
            if c.params["view"]["callback_id"] == ids.SEND_CONFIRM
        ]
    )[0].params["view"]
    assert "*9 recipients*" in texts(confirm["blocks"])
    assert "Hi Guest 0, check out our special holiday offers!" in texts(confirm["blocks"])
    assert sender.interaction(p.submission(confirm, {})).status_code == 200
    slack.wait_for(lambda: broadcast(env).status == "sending")
    work_queues(env, SLACK)  # the `started` event: the card shows the broadcast sending
    sending = slack.message(CHANNEL, card_ts)
    assert "Sending" in sending.text
    assert [
        e["text"]["text"]
        for blk in sending.blocks
        if blk["type"] == "actions"
        for e in blk["elements"]
    ] == ["Pause", "Report", "Cancel"]

    # 5. Workers send to the sandbox; its webhooks come back; the card follows.
    def settled() -> bool:
        with transaction(env.runtime.sessions) as session:
            row = session.get(Broadcast, b.id)
            assert row is not None
            c = stored_counts(row)
            return bool(
                row.status == "completed"
                and c.delivered == 8
                and c.read == 8
                and c.failed == 1
                and c.responded >= 1
            )

    until(env, settled, "completed with every status and a reply")

    def card_fields() -> list[str]:
        blocks = slack.message(CHANNEL, card_ts).blocks
        return [f["text"] for blk in blocks for f in blk.get("fields", [])]

    def counts_now() -> Counts:
        with transaction(env.runtime.sessions) as session:
            row = session.get(Broadcast, b.id)
            assert row is not None
            assert stored_counts(row) == recount(session, b.id)
            return stored_counts(row)

    def card_shows_counts() -> Counts | None:
        c = counts_now()
        shown = card_fields()
        expected = [
            f"*Sent*\n{c.sent}",
            f"*Delivered*\n{c.delivered}",
            f"*Read*\n{c.read}",
            f"*Responded*\n{c.responded}",
            f"*Failed*\n{c.failed}",
        ]
        return c if all(e in shown for e in expected) else None

    # Throttled progress edits catch up (a trailing refresh a few seconds later).
    counts = until(env, card_shows_counts, "the card showing the final counts")
    assert (counts.sent, counts.delivered, counts.read, counts.failed) == (9, 8, 8, 1)
    assert counts.responded >= 1
    assert len(sb.messages()) == 9  # each recipient exactly once

    final = slack.message(CHANNEL, card_ts)
    assert "Completed" in final.text
    assert "131026" in texts(final.blocks)  # top failure reason
    buttons = [
        e["text"]["text"]
        for blk in final.blocks
        if blk["type"] == "actions"
        for e in blk["elements"]
    ]
    assert buttons == ["Report", "Retry failed…", "Duplicate"]
    notes = [m.text for m in slack.messages_in(CHANNEL, card_ts)]
    assert any(n.startswith("🚀 Started by <@U0ANA>") for n in notes)
    assert any(n.startswith("✅ Completed: 9 sent of 9") for n in notes), notes

    # 6. Replies reach the Slack agent: one thread per conversation, headed by the broadcast.
    headers = until(
        env,
        lambda: [m for m in slack.messages_in(AGENTS) if m.thread_ts is None],
        "agent threads",
    )
    assert "replied to broadcast *Holiday Sale*" in headers[0].text

    # 7. Report: the per-recipient CSV and the chart land in the thread.
    sender.interaction(p.button(ids.CARD_REPORT, b.id, message_ts=card_ts))
    until(env, lambda: len(slack.uploads_in(CHANNEL, card_ts)) == 3, "report uploads")
    csv_file, chart = slack.uploads_in(CHANNEL, card_ts)[1:]
    assert csv_file.content.decode().count("\n") == 10  # header + 9 recipients
    assert chart.content.startswith(b"\x89PNG")
