"""Events: files dropped in a card's thread, replies in agent threads, the App Home tab."""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError
from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from bot.slack import agent_threads, flows
from bot.slack import jobs as slack_jobs
from bot.slack.authz import Authoriser
from jobs.runtime import Runtime

log = logging.getLogger(__name__)


def register(app: App) -> None:
    app.event("message")(on_message)
    app.event("file_shared")(on_file_shared)
    app.event("app_home_opened")(on_home_opened)


def on_message(
    event: dict[str, Any], body: dict[str, Any], client: WebClient, context: BoltContext
) -> None:
    runtime: Runtime = context["runtime"]
    thread_ts = event.get("thread_ts")
    if not thread_ts:
        return
    if event.get("subtype") == "file_share":
        for file in event.get("files") or []:
            if file.get("id"):
                slack_jobs.enqueue_ingest(
                    runtime,
                    str(file["id"]),
                    str(event.get("user", "")),
                    str(event["channel"]),
                    str(thread_ts),
                )
        return
    if event.get("subtype") is None and not event.get("bot_id") and event.get("user"):
        # A redelivered event (Slack retries, or the same message again) never reaches the
        # customer twice: only the first delivery of an event id and message ts is acted on.
        event_id = str(body.get("event_id") or "") or None
        channel, ts = str(event.get("channel", "")), str(event.get("ts", ""))
        try:
            first = agent_threads.first_delivery(
                runtime.redis, event_id=event_id, channel=channel, ts=ts
            )
        except RedisError:  # without the memory a retry could send twice: send nothing
            log.exception("Slack message %s not sent: Redis is unavailable", ts)
            text = (
                "Not sent to WhatsApp: the bot cannot reach Redis right now. Post it again later."
            )
            flows.tell(client, user_id=str(event["user"]), channel_id=channel, text=text)
            return
        if not first:
            log.info("Slack event %s (message %s) was already handled", event_id, ts)
            return
        agent_threads.on_human_reply(runtime, client, event)


def on_file_shared(event: dict[str, Any]) -> None:
    """Handled through the message event (it carries the thread); acknowledged here."""


def on_home_opened(event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
    if event.get("tab") not in (None, "home"):
        return
    user = str(event["user"])
    authz: Authoriser = context["authz"]
    view = flows.home(context["runtime"], can_send=authz.allowed(user))
    client.views_publish(user_id=user, view=view)
