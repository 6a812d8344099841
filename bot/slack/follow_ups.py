"""Slack side of the follow-ups: edit a draft, retry failed, duplicate, show the audit trail.

Like bot.slack.flows: plain values in, one transaction per operation, the service layer does the
work, errors are BroadcastBotError or FieldError sentences for the user.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import next_steps
from bot.actors import slack_user
from bot.slack import card_messages, notifications
from bot.slack.authz import Authoriser
from bot.slack.blocks import ids, kit, messages, modals
from bot.slack.blocks.state import EditInput, FieldError
from bot.slack.flows import template_choice
from broadcasts import audit, drafts, follow_ups, service, templates
from broadcasts.db import transaction
from broadcasts.enums import BroadcastStatus
from broadcasts.errors import BroadcastBotError, NotAuthorised, ValidationFailed
from broadcasts.lifecycle import ensure_editable
from broadcasts.models import Broadcast
from jobs.runtime import Runtime
from kapso.errors import resend_wait

log = logging.getLogger(__name__)

AUDIT_LINES = 40
# Names and file names are user text: escaped so a name like "<!channel>" cannot ping anyone.
safe = kit.escape


EDIT_FIELD_BLOCKS = {
    "name": ids.B_EDIT_NAME,
    "template": ids.B_EDIT_TEMPLATE,
    "phones": ids.B_EDIT_PHONES,
    "import": ids.B_EDIT_IMPORT,
    "recipients": ids.B_EDIT_ALL,
}


def _may_edit(authz: Authoriser, user_id: str, broadcast: Broadcast) -> None:
    """A scheduled broadcast goes out on its own: changing it is for those who may schedule."""
    ensure_editable(broadcast.name, broadcast.status)
    if broadcast.status == BroadcastStatus.SCHEDULED:
        try:
            authz.require(user_id, "edit")
        except NotAuthorised as exc:
            raise NotAuthorised(
                f"Broadcast '{broadcast.name}' is scheduled and goes out on its own. {exc}"
            ) from None


def edit_modal(runtime: Runtime, ref: str, *, user_id: str, authz: Authoriser) -> dict[str, Any]:
    with transaction(runtime.sessions) as session:
        broadcast = service.get_broadcast(session, ref)
        _may_edit(authz, user_id, broadcast)
        approved = templates.list_templates(session, broadcast.config, approved_only=True)
        imports = [
            (line.id, line.label.replace("`", ""))
            for line in drafts.list_imports(session, broadcast)
            if line.remaining
        ]
        return modals.edit_draft_modal(
            modals.EditChoices(
                broadcast_id=broadcast.id,
                name=broadcast.name,
                recipients=broadcast.total_count,
                template_id=broadcast.template_id,
                templates=tuple(template_choice(t) for t in approved),
                imports=tuple(imports),
            )
        )


def apply_edit(
    runtime: Runtime,
    client: WebClient,
    broadcast_id: str,
    data: EditInput,
    *,
    user_id: str,
    authz: Authoriser,
) -> list[str]:
    """Apply the edit modal all or nothing (one transaction); returns what changed."""
    by = slack_user(user_id)
    try:
        phones = drafts.parse_phones([data.phones]) if data.phones else []
    except ValidationFailed as exc:
        raise FieldError(ids.B_EDIT_PHONES, str(exc)) from None
    changes: list[str] = []
    block = ids.B_EDIT_NAME
    try:
        with transaction(runtime.sessions) as session:
            broadcast = service.get_broadcast(session, broadcast_id)
            _may_edit(authz, user_id, broadcast)
            if data.remove_all:
                block = ids.B_EDIT_ALL
                removal = drafts.remove_recipients(session, broadcast.id, by=by, everyone=True)
                changes.append(f"removed all {kit.number(removal.removed)} recipients")
            else:
                if phones:
                    block = ids.B_EDIT_PHONES
                    removal = drafts.remove_recipients(session, broadcast.id, by=by, phones=phones)
                    text = f"removed {kit.number(removal.removed)} recipients by number"
                    if removal.not_found:
                        text += f" ({len(removal.not_found)} were not recipients)"
                    changes.append(text)
                if data.import_id is not None:
                    block = ids.B_EDIT_IMPORT
                    removal = drafts.remove_recipients(
                        session, broadcast.id, by=by, import_id=data.import_id
                    )
                    changes.append(
                        f"undid import #{data.import_id} "
                        f"({kit.number(removal.removed)} recipients removed)"
                    )
            new_name = data.name if data.name != broadcast.name else None
            new_template = data.template_id if data.template_id != broadcast.template_id else None
            if new_name is not None or new_template is not None:
                block = ids.B_EDIT_TEMPLATE if new_template is not None else ids.B_EDIT_NAME
                result = drafts.edit_draft(
                    session,
                    broadcast.id,
                    by=by,
                    name=new_name,
                    template_ref=new_template,
                    drop_unfit=data.drop_unfit,
                )
                changes += result.changes
            card = (broadcast.id, broadcast.channel_id, broadcast.card_message_id)
    except ValidationFailed as exc:
        block = EDIT_FIELD_BLOCKS.get(exc.field or "", block)
        raise FieldError(block, next_steps.for_slack(exc)) from None
    except BroadcastBotError as exc:
        raise FieldError(block, str(exc)) from None
    if changes:  # after the commit: the card shows what is stored
        _refresh(runtime, client, card, user_id, changes)
    return changes


def _refresh(
    runtime: Runtime,
    client: WebClient,
    card: tuple[str, str | None, str | None],
    user_id: str,
    changes: list[str],
) -> None:
    broadcast_id, channel, ts = card
    if not (channel and ts):
        return
    notifications.show_changes(runtime, broadcast_id)
    card_messages.post_in_thread(
        client,
        channel,
        ts,
        f"✏️ {kit.mention(user_id)} edited the draft: " + safe("; ".join(changes)) + ".",
    )


def _post_new_card(
    client: WebClient, session: Any, broadcast: Broadcast, channel_id: str | None
) -> str | None:
    """Post the new draft's card where the original's is (else where the user asked)."""
    channel = broadcast.channel_id or channel_id
    if not channel:
        return None
    try:
        card_messages.post_card(client, session, broadcast, channel)
    except SlackApiError as exc:
        log.warning(
            "card of %s not posted in %s: %s", broadcast.id, channel, exc.response.get("error")
        )
        return None
    return channel


def _announce(
    runtime: Runtime,
    client: WebClient,
    new_id: str,
    original_id: str,
    text: str,
    channel_id: str | None,
) -> str:
    """After the draft's commit (Slack never shows a draft that does not exist): post its card,
    note `text` under the original's; returns the user's answer."""
    with transaction(runtime.sessions) as session:
        new = session.get(Broadcast, new_id)
        original = session.get(Broadcast, original_id)
        assert new is not None and original is not None  # just committed; nothing deletes them
        where = _post_new_card(client, session, new, channel_id)
        card_messages.note(client, original, text)
    if where is None:
        text += f" (No card: `/broadcast status {new_id[:8]}` shows it.)"
    return text


def retry_modal(runtime: Runtime, ref: str) -> dict[str, Any]:
    """The confirmation of "Retry failed…": who the retry would hold and who is left out."""
    with transaction(runtime.sessions) as session:
        broadcast = service.get_broadcast(session, ref)
        selection = follow_ups.preview_retry(session, broadcast, resend_wait=resend_wait)
        return modals.retry_confirm_modal(
            broadcast.id, broadcast.name, selection.total, selection.explain()
        )


def retry_failed(
    runtime: Runtime, client: WebClient, ref: str, *, user_id: str, channel_id: str | None
) -> str:
    """Make the retry draft, post its card, note it under the original; returns a sentence."""
    with transaction(runtime.sessions) as session:
        result = follow_ups.retry_failed(
            session, ref, by=slack_user(user_id), resend_wait=resend_wait
        )
        retry = result.broadcast
        text = (
            f"🔁 {kit.mention(user_id)} made *{safe(retry.name)}* (`{retry.id[:8]}`), a draft "
            f"retry: {result.selection.explain()} Review it and press *Send* on its card."
        )
        ids = retry.id, result.original.id
    return _announce(runtime, client, *ids, text, channel_id)


def duplicate(
    runtime: Runtime, client: WebClient, ref: str, *, user_id: str, channel_id: str | None
) -> str:
    """Make the copy, post its card, note it under the original; returns a sentence."""
    with transaction(runtime.sessions) as session:
        result = follow_ups.duplicate_broadcast(session, ref, by=slack_user(user_id))
        copy = result.broadcast
        left = f"; {kit.number(result.opted_out)} opted-out contacts left out"
        text = (
            f"📄 {kit.mention(user_id)} duplicated *{safe(result.original.name)}* as "
            f"*{safe(copy.name)}* "
            f"(`{copy.id[:8]}`) with {kit.number(result.copied)} recipients"
            f"{left if result.opted_out else ''}."
        )
        ids = copy.id, result.original.id
    return _announce(runtime, client, *ids, text, channel_id)


def audit_blocks(runtime: Runtime, ref: str) -> list[dict[str, Any]]:
    with transaction(runtime.sessions) as session:
        broadcast = service.get_broadcast(session, ref)
        lines = audit.entries(session, broadcast.id, limit=AUDIT_LINES)
        total = audit.count(session, broadcast.id)
        return messages.audit_blocks(broadcast.name, broadcast.id[:8], lines, total)
