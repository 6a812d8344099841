"""What the Slack listeners do once they have parsed a request: read, call services, render.

Listeners stay thin (ack, parse, call one function here); every function here takes plain values,
opens its own transaction, and raises BroadcastBotError or FieldError with a sentence for the user.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session

from bot.actors import slack_user
from bot.slack import card_messages, notifications
from bot.slack.blocks import ids, kit, messages, modals
from bot.slack.blocks.state import FieldError, NewBroadcastInput
from broadcasts import configs, contacts, service, templates
from broadcasts.csv_template import template_csv
from broadcasts.db import transaction
from broadcasts.errors import NotFoundError, ValidationFailed
from broadcasts.metrics import stored_counts
from broadcasts.models import Template, WhatsAppConfig
from broadcasts.recipients import first_params
from broadcasts.send_check import send_preview
from jobs.runtime import Runtime
from kapso.templates import render_body

log = logging.getLogger(__name__)

# Which modal block shows a service error about a field.
FIELD_BLOCKS = {
    "name": ids.B_NAME,
    "config": ids.B_CONFIG,
    "throughput": ids.B_RATE,
    "rate": ids.B_RATE,
    "batch_size": ids.B_BATCH_SIZE,
    "batch_pause": ids.B_BATCH_PAUSE,
}


# -- new broadcast -----------------------------------------------------------------------------


def config_choice(config: WhatsAppConfig) -> modals.ConfigChoice:
    return modals.ConfigChoice(
        id=config.id,
        name=config.name,
        display_number=config.display_phone_number,
        agent_name=config.primary_agent.name if config.primary_agent else None,
        throughput_mps=config.throughput_mps,
    )


def template_choice(template: Template) -> modals.TemplateChoice:
    return modals.TemplateChoice(
        id=template.id,
        name=template.name,
        language=template.language,
        category=template.category,
        body_text=template.body_text,
    )


def new_modal(
    session: Session,
    *,
    channel_id: str | None,
    config_id: int | None = None,
    template_id: int | None = None,
) -> dict[str, Any]:
    """The new-broadcast modal; a sole configuration is chosen already."""
    all_configs = configs.list_configs(session)
    if not all_configs:
        raise NotFoundError(
            "There is no WhatsApp configuration yet; an operator adds one with "
            "`broadcast-bot configs add` (see the README)."
        )
    selected = next((c for c in all_configs if c.id == config_id), None)
    if selected is None and len(all_configs) == 1:
        selected = all_configs[0]
    template = None
    if selected is not None and template_id is not None:
        found = templates.template_of(session, selected.id, template_id)
        if found is not None:
            template = template_choice(found)
    return modals.new_broadcast_modal(
        [config_choice(c) for c in all_configs],
        channel_id=channel_id,
        selected=config_choice(selected) if selected else None,
        template=template,
    )


def template_options(session: Session, config_id: int | None, search: str) -> list[dict[str, Any]]:
    if config_id is None:
        return []
    config = session.get(WhatsAppConfig, config_id)
    if config is None:
        return []
    found = templates.list_templates(session, config, approved_only=True, search=search)
    return [modals.template_option(template_choice(t)) for t in found[: kit.MAX_OPTIONS]]


def create_from_modal(
    runtime: Runtime, data: NewBroadcastInput, *, user_id: str, team_id: str
) -> str:
    """Create the draft (committed, no Slack call: the listener acks next), or raise FieldError
    for the modal field at fault. Returns the broadcast id; `post_new_card` follows the ack."""
    if not data.name:
        raise FieldError(ids.B_NAME, "Give the broadcast a name.")
    if data.config_id is None:
        raise FieldError(ids.B_CONFIG, "Choose the WhatsApp configuration to send from.")
    template_block = modals.template_block_id(data.config_id)
    if data.template_id is None:
        raise FieldError(template_block, "Choose an approved template.")
    if not data.channel_id:
        raise FieldError(ids.B_CHANNEL, "Choose the channel for the broadcast card.")
    try:
        with transaction(runtime.sessions) as session:
            broadcast = service.create_broadcast(
                session,
                name=data.name,
                config_ref=data.config_id,
                template_ref=data.template_id,
                by=slack_user(user_id),
                channel_id=data.channel_id,
                batch_size=data.batch_size,
                batch_pause_seconds=data.batch_pause_seconds,
                rate_mps=data.rate_mps,
            )
            broadcast.workspace_id = team_id
            return broadcast.id
    except ValidationFailed as exc:
        block = template_block if exc.field == "template" else FIELD_BLOCKS.get(exc.field or "")
        raise FieldError(block or ids.B_NAME, str(exc)) from None
    except NotFoundError as exc:
        raise FieldError(template_block, str(exc)) from None


def post_new_card(runtime: Runtime, client: WebClient, broadcast_id: str, *, user_id: str) -> bool:
    """After the ack and the commit: post the new draft's card (no database lock is held over
    the Slack round trip). A channel Slack refuses removes the untouched draft, and the user
    is told why in a direct message."""
    with transaction(runtime.sessions) as session:
        broadcast = service.get_broadcast(session, broadcast_id)
        channel = str(broadcast.channel_id or "")
        body = card_messages.message(card_messages.card_data(session, broadcast))
    try:
        response = client.chat_postMessage(channel=channel, unfurl_links=False, **body)
    except SlackApiError as exc:
        with transaction(runtime.sessions) as session:
            service.discard_unposted_draft(session, broadcast_id)
        text = f"{_channel_problem(exc, channel)} The draft was not kept: create it again."
        tell(client, user_id=user_id, channel_id=None, text=text)
        return False
    with transaction(runtime.sessions) as session:
        broadcast = service.get_broadcast(session, broadcast_id)
        broadcast.channel_id = str(response["channel"])
        broadcast.card_message_id = str(response["ts"])
    return True


def _channel_problem(exc: SlackApiError, channel: str) -> str:
    error = exc.response.get("error")
    if error in ("not_in_channel", "channel_not_found"):
        return (
            f"I could not post the card: I am not in <#{channel}>. Invite me there "
            "(`/invite @WhatsApp Broadcasts`) or pick another channel."
        )
    return f"Slack refused the card in <#{channel}> ({error}); pick another channel."


# -- the card's buttons ---------------------------------------------------------------------------


def add_contacts_modal(runtime: Runtime, broadcast_id: str) -> dict[str, Any]:
    with transaction(runtime.sessions) as session:
        broadcast = service.get_broadcast(session, broadcast_id)
        service.check_recipients_editable(broadcast)
        eligible = int(contacts.count_eligible(session))
        return modals.add_contacts_modal(broadcast.id, broadcast.name, eligible)


def contact_options(runtime: Runtime, search: str) -> list[dict[str, Any]]:
    with transaction(runtime.sessions) as session:
        found = contacts.list_contacts(
            session, search=search, eligible_only=True, limit=kit.MAX_OPTIONS
        )
        return [
            kit.option(f"{c.name} {c.phone}" if c.name else str(c.phone), str(c.id)) for c in found
        ]


def add_contacts(
    runtime: Runtime,
    client: WebClient,
    broadcast_id: str,
    contact_ids: list[int],
    *,
    all_eligible: bool,
    user_id: str,
) -> None:
    """Add saved contacts as recipients, then refresh the card and say so in its thread (the
    listener has checked, before its ack, that something was picked)."""
    with transaction(runtime.sessions) as session:
        result = contacts.add_contacts_to_broadcast(
            session,
            broadcast_id,
            ids=contact_ids,
            all_eligible=all_eligible,
            by=slack_user(user_id),
        )
        broadcast = service.get_broadcast(session, broadcast_id)
        data = card_messages.card_data(session, broadcast)
    left_out = [
        f"{kit.number(n)} {label}"
        for n, label in (
            (result.already_present, "already in the broadcast"),
            (result.excluded_test, "test contacts"),
            (result.excluded_opted_out, "opted out"),
            (result.missing_params, "missing template parameters"),
        )
        if n
    ]
    text = (
        f"👥 {kit.mention(user_id)} added {kit.number(result.added)} contacts "
        f"({kit.number(data.counts.total)} recipients now)."
    )
    if left_out:
        text += " Left out: " + ", ".join(left_out) + "."
    if broadcast.card_message_id:  # no card: no edit budget to spend
        notifications.show_changes(runtime, broadcast.id)
    card_messages.note(client, broadcast, text)


def upload_csv_template(
    runtime: Runtime, client: WebClient, broadcast_id: str, user_id: str
) -> None:
    with transaction(runtime.sessions) as session:
        broadcast = service.get_broadcast(session, broadcast_id)
        content = template_csv(broadcast.template)
        channel, ts = broadcast.channel_id, broadcast.card_message_id
        name = broadcast.template.name
    client.files_upload_v2(
        channel=channel,
        thread_ts=ts,
        filename=f"{name}_recipients.csv",
        content=content,
        title=f"CSV template for {name}",
        initial_comment=(
            f"{kit.mention(user_id)} here is the CSV layout: one row per recipient, phone numbers "
            "in international format. Fill it in and drop it into this thread."
        ),
    )


def send_summary(runtime: Runtime, broadcast_id: str) -> modals.SendSummary:
    with transaction(runtime.sessions) as session:
        preview = send_preview(session, broadcast_id)
    return modals.SendSummary(
        broadcast_id=preview.broadcast_id,
        name=preview.name,
        recipients=preview.recipients,
        template_name=preview.template_name,
        rendered=render_body(preview.template_body, preview.sample_params),
        rate_mps=preview.rate_mps,
        batch_size=preview.batch_size,
        batch_pause_seconds=preview.batch_pause_seconds,
        estimate_seconds=preview.estimate_seconds,
        warnings=preview.warnings,
        countries=preview.countries,
    )


def schedule_modal(
    runtime: Runtime, client: WebClient, broadcast_id: str, user_id: str
) -> dict[str, Any]:
    tz: str | None = None
    try:
        user: dict[str, Any] = client.users_info(user=user_id).get("user") or {}
        tz = user.get("tz")
    except SlackApiError:
        log.info("users.info failed for %s; scheduling without the timezone name", user_id)
    with transaction(runtime.sessions) as session:
        broadcast = service.get_broadcast(session, broadcast_id)
        service.check_startable(session, broadcast)
        start = (datetime.now(UTC) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        return modals.schedule_modal(
            broadcast.id, broadcast.name, initial=start, user_tz=tz, current=broadcast.scheduled_at
        )


def send_test_modal(runtime: Runtime, broadcast_id: str) -> dict[str, Any]:
    with transaction(runtime.sessions) as session:
        broadcast = service.get_broadcast(session, broadcast_id)
        sample = {str(k): str(v) for k, v in first_params(session, broadcast.id).items()}
        names = [str(n) for n in broadcast.template.parameter_names]
        return modals.send_test_modal(broadcast.id, broadcast.name, names, sample)


# -- commands ------------------------------------------------------------------------------------


def broadcast_lines(session: Session, limit: int = 15) -> list[messages.BroadcastLine]:
    return [
        messages.BroadcastLine(b.id, b.name, str(b.status), stored_counts(b), b.channel_id)
        for b in service.list_broadcasts(session, limit=limit)
    ]


def status_blocks(runtime: Runtime, ref: str) -> list[dict[str, Any]]:
    with transaction(runtime.sessions) as session:
        broadcast = service.get_broadcast(session, ref)
        from bot.slack.blocks.card import card_blocks

        blocks = card_blocks(card_messages.card_data(session, broadcast))
        # Buttons act on the card itself; the status reply is read-only.
        return [b for b in blocks if b.get("type") != "actions"]


def template_listing(session: Session) -> list[tuple[str, list[tuple[str, str, str, str]]]]:
    out = []
    for config in configs.list_configs(session):
        rows = [
            (t.name, t.language, t.category, t.status)
            for t in templates.list_templates(session, config)
        ]
        out.append((config.name, rows))
    return out


def show_notice(client: WebClient, view_id: str, title: str, text: str) -> None:
    """Replace an open modal's content with a sentence (after its submission was acked)."""
    try:
        client.views_update(view_id=view_id, view=modals.notice_modal(title, text))
    except SlackApiError as exc:  # the user closed it: the card's thread still says what happened
        log.info("could not update view %s: %s", view_id, exc.response.get("error"))


def tell(client: WebClient, *, user_id: str, channel_id: str | None, text: str) -> None:
    """An ephemeral sentence for one user where they acted (their DM when there is no channel)."""
    text = kit.escape_keeping_mentions(text)
    try:
        if channel_id:
            client.chat_postEphemeral(channel=channel_id, user=user_id, text=text)
        else:
            client.chat_postMessage(channel=user_id, text=text)
    except SlackApiError as exc:
        log.warning("could not tell %s: %s", user_id, exc.response.get("error"))


def home(runtime: Runtime, *, can_send: bool) -> dict[str, Any]:
    from bot.slack.blocks.home import home_view

    with transaction(runtime.sessions) as session:
        return home_view(broadcast_lines(session, limit=40), can_send=can_send)
