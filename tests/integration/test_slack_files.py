"""CSV files dropped in a card's thread: downloaded with the bot token, imported once, answered."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.slack import card_messages
from bot.slack.client import make_client
from broadcasts import service
from broadcasts.db import transaction
from broadcasts.models import Broadcast, Recipient
from tests.factories import OPERATOR, make_broadcast
from tests.fakes import slack_payloads as p
from tests.fakes.slack_env import SlackEnv, slack_env

CSV = (
    b"phone_number,param1\n+14155550101,Ana\n+14155550102,Bob\nnot-a-phone,Eve\n+14155550101,Ana\n"
)


@pytest.fixture
def env(db_url: str, redis_url: str) -> Iterator[SlackEnv]:
    with slack_env(db_url, redis_url) as e:
        yield e


@pytest.fixture
def card(env: SlackEnv) -> tuple[str, str, str]:
    """A draft broadcast with its card in #C0CAMP: (broadcast id, channel, card ts)."""
    client = make_client(env.runtime.settings)
    with transaction(env.runtime.sessions) as session:
        broadcast = make_broadcast(session)
        ts = card_messages.post_card(client, session, broadcast, "C0CAMP")
        return broadcast.id, "C0CAMP", ts


def thread_texts(env: SlackEnv, channel: str, ts: str) -> list[str]:
    return [m.text for m in env.slack.messages_in(channel, ts)]


def test_a_csv_in_the_thread_is_imported_and_answered_with_a_summary_and_report(
    env: SlackEnv, card: tuple[str, str, str]
) -> None:
    broadcast_id, channel, ts = card
    file = env.slack.add_file("people.csv", CSV)
    assert env.sender.event(p.file_share(file, channel=channel, thread_ts=ts)).status_code == 200
    env.work()
    texts = thread_texts(env, channel, ts)
    summary = next(t for t in texts if "imported `people.csv`" in t)
    assert "*2 recipients added* from 4 rows" in summary
    assert "1 invalid" in summary and "1 duplicate rows" in summary
    [report] = env.slack.uploads_in(channel, ts)
    assert report.filename == "people_errors.csv" and b"not-a-phone" in report.content
    downloads = env.slack.calls_to("download")
    assert downloads[0].headers["Authorization"] == f"Bearer {env.runtime.settings.slack_bot_token}"
    with transaction(env.runtime.sessions) as session:
        assert session.query(Recipient).filter_by(broadcast_id=broadcast_id).count() == 2
    edited = env.slack.message(channel, ts)
    assert edited.edits >= 1
    assert edited.text.endswith("Draft, 2 recipients")


def test_a_redelivered_event_imports_the_file_once(
    env: SlackEnv, card: tuple[str, str, str]
) -> None:
    _, channel, ts = card
    file = env.slack.add_file("people.csv", CSV)
    event = p.file_share(file, channel=channel, thread_ts=ts)
    env.sender.event(event, event_id="Ev1")
    env.sender.event(event, event_id="Ev1", headers={"X-Slack-Retry-Num": "1"})
    env.work()
    env.sender.event(event, event_id="Ev1", headers={"X-Slack-Retry-Num": "2"})
    env.work()
    summaries = [t for t in thread_texts(env, channel, ts) if "imported `people.csv`" in t]
    assert len(summaries) == 1
    assert len(env.slack.calls_to("download")) == 1


def test_a_file_that_is_not_a_csv_is_declined_politely(
    env: SlackEnv, card: tuple[str, str, str]
) -> None:
    _, channel, ts = card
    file = env.slack.add_file(
        "people.xlsx", b"PK\x03\x04", mimetype="application/vnd.ms-excel", filetype="xlsx"
    )
    env.sender.event(p.file_share(file, channel=channel, thread_ts=ts))
    env.work()
    [reply] = thread_texts(env, channel, ts)
    assert "`people.xlsx` is not a CSV file" in reply
    assert env.slack.calls_to("download") == []


def test_a_file_in_a_broadcast_that_is_no_longer_a_draft_is_not_imported(
    env: SlackEnv, card: tuple[str, str, str]
) -> None:
    broadcast_id, channel, ts = card
    with transaction(env.runtime.sessions) as session:
        service.cancel_broadcast(session, broadcast_id, by=OPERATOR)
    file = env.slack.add_file("late.csv", CSV)
    env.sender.event(p.file_share(file, channel=channel, thread_ts=ts))
    env.work()
    [reply] = thread_texts(env, channel, ts)
    assert "is cancelled; recipients can no longer be added" in reply


def test_a_download_redirected_to_a_login_page_explains_the_missing_scope(
    env: SlackEnv, card: tuple[str, str, str]
) -> None:
    broadcast_id, channel, ts = card
    file = env.slack.add_file("people.csv", CSV, redirect=True)
    env.sender.event(p.file_share(file, channel=channel, thread_ts=ts))
    env.work()
    last = thread_texts(env, channel, ts)[-1]
    assert "files:read" in last and "was not imported" in last
    with transaction(env.runtime.sessions) as session:
        assert session.get(Broadcast, broadcast_id).total_count == 0  # type: ignore[union-attr]


def test_files_in_threads_that_are_not_cards_are_ignored(env: SlackEnv) -> None:
    file = env.slack.add_file("people.csv", CSV)
    env.sender.event(p.file_share(file, channel="C0OTHER", thread_ts="123.456"))
    env.work()
    assert env.slack.calls_to("chat.postMessage") == []
    assert env.slack.calls_to("files.info") == []
