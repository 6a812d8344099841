"""The Bolt app (sync): one WebClient on SLACK_API_URL, listeners registered by kind."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext

from bot.slack.authz import Authoriser
from bot.slack.client import make_client
from bot.slack.listeners import actions, commands, events, options, views
from jobs.runtime import Runtime

log = logging.getLogger(__name__)


def build_app(runtime: Runtime, *, socket_mode: bool = False) -> App:
    """Build the app; HTTP mode verifies Slack's signatures, Socket Mode has none to verify."""
    settings = runtime.settings
    client = make_client(settings)
    secret = (
        settings.slack_signing_secret
        if socket_mode
        else settings.require("slack_signing_secret", "Slack requests cannot be verified")
    )
    app = App(
        client=client,
        signing_secret=secret,
        process_before_response=False,
        request_verification_enabled=not socket_mode,
        token_verification_enabled=False,
        raise_error_for_unhandled_request=False,
    )
    authz = Authoriser(settings.admin_ids, client, runtime.sessions)

    def inject(context: BoltContext, next: Callable[[], None]) -> None:
        # Global middleware runs after Bolt's signature check, so reaching it means verified.
        context["verified"] = True
        context["runtime"] = runtime
        context["authz"] = authz
        next()

    app.use(inject)
    app.error(_on_error)
    for module in (commands, views, actions, events, options):
        module.register(app)
    return app


def _on_error(error: Exception, body: dict[str, Any], context: BoltContext) -> None:
    """An unexpected failure: logged with an id, and the user told in a sentence (no traces).

    Only a verified request names someone to tell: an unsigned body could name any user.
    """
    ref = uuid.uuid4().hex[:8]
    if not context.get("verified"):
        log.warning("Slack request failed before verification (ref %s): %r", ref, error)
        return
    log.error("Slack listener failed (ref %s)", ref, exc_info=error)
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
    if not user or context.client is None:
        return
    text = (
        f"Something went wrong on our side (ref `{ref}` in the logs); please try again in a moment."
    )
    try:
        if channel:
            context.client.chat_postEphemeral(channel=channel, user=user, text=text)
        else:
            context.client.chat_postMessage(channel=user, text=text)
    except Exception:
        log.warning("could not report error %s to %s", ref, user)
