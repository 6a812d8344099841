"""Modals: new broadcast, add contacts, send confirmation, schedule, send test, notices."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.slack.blocks import ids
from bot.slack.blocks.kit import (
    MAX_OPTIONS,
    Block,
    clip,
    context,
    divider,
    escape,
    input_block,
    modal,
    number,
    option,
    plain,
    quote,
    section,
)
from bot.slack.blocks.messages import countries_text
from broadcasts.durations import duration_text

PREVIEW_LIMIT = 2900


@dataclass(frozen=True)
class ConfigChoice:
    id: int
    name: str
    display_number: str | None
    agent_name: str | None
    throughput_mps: int


@dataclass(frozen=True)
class TemplateChoice:
    id: int
    name: str
    language: str
    category: str
    body_text: str


def metadata(**values: Any) -> str:
    return json.dumps(values, separators=(",", ":"))


def config_option(c: ConfigChoice) -> dict[str, Any]:
    return option(c.name, str(c.id), c.display_number or None)


def template_option(t: TemplateChoice) -> dict[str, Any]:
    return option(f"{t.name} ({t.language})", str(t.id), t.category.lower())


def template_block_id(config_id: int) -> str:
    """Changes with the configuration so Slack forgets a template of another number."""
    return f"{ids.B_TEMPLATE}_{config_id}"


def new_broadcast_modal(
    configs: list[ConfigChoice],
    *,
    channel_id: str | None,
    selected: ConfigChoice | None = None,
    template: TemplateChoice | None = None,
) -> dict[str, Any]:
    config_select: dict[str, Any] = {
        "type": "static_select",
        "action_id": ids.A_CONFIG,
        "placeholder": plain("Choose a WhatsApp number"),
        "options": [config_option(c) for c in configs[:MAX_OPTIONS]],
    }
    if selected is not None:
        config_select["initial_option"] = config_option(selected)
    blocks: list[Block] = [
        input_block(
            ids.B_NAME,
            "Broadcast name",
            {
                "type": "plain_text_input",
                "action_id": ids.A_NAME,
                "max_length": 200,
                "placeholder": plain("e.g. Holiday Sale 2026"),
            },
        ),
        input_block(ids.B_CONFIG, "WhatsApp configuration", config_select, dispatch=True),
    ]
    if selected is None:
        blocks.append(context("Choose a configuration to see its approved templates and agent."))
    else:
        blocks.extend(_agent_blocks(selected))
        template_select: dict[str, Any] = {
            "type": "external_select",
            "action_id": ids.A_TEMPLATE,
            "placeholder": plain("Search approved templates"),
            "min_query_length": 0,
        }
        if template is not None:
            template_select["initial_option"] = template_option(template)
        blocks.append(
            input_block(
                template_block_id(selected.id),
                "Template",
                template_select,
                hint=f"Only APPROVED templates of {escape(selected.name)} are listed.",
                dispatch=True,
            )
        )
        if template is not None:
            blocks.append(
                section(
                    "*Preview*\n" + quote(escape(clip(template.body_text, PREVIEW_LIMIT))),
                    block_id=ids.B_PREVIEW,
                )
            )
    conversation: dict[str, Any] = {
        "type": "conversations_select",
        "action_id": ids.A_CHANNEL,
        "default_to_current_conversation": True,
        "filter": {"include": ["public", "private"], "exclude_bot_users": True},
    }
    if channel_id:
        conversation["initial_conversation"] = channel_id
    blocks.append(
        input_block(
            ids.B_CHANNEL,
            "Post progress in",
            conversation,
            hint="The broadcast card and its thread live here; invite the bot first.",
        )
    )
    blocks.append(divider())
    blocks.append(context("*Pacing* (optional): leave empty to use the configuration's."))
    max_rate = selected.throughput_mps if selected else 10_000
    blocks.append(
        input_block(
            ids.B_RATE,
            "Messages per second",
            {
                "type": "number_input",
                "action_id": ids.A_RATE,
                "is_decimal_allowed": True,
                "min_value": "0.1",
                "max_value": str(max_rate),
            },
            optional=True,
            hint=f"At most {number(max_rate)} (the number's throughput).",
        )
    )
    blocks.append(
        input_block(
            ids.B_BATCH_SIZE,
            "Batch size",
            {
                "type": "number_input",
                "action_id": ids.A_BATCH_SIZE,
                "is_decimal_allowed": False,
                "min_value": "1",
                "max_value": "100000",
            },
            optional=True,
        )
    )
    blocks.append(
        input_block(
            ids.B_BATCH_PAUSE,
            "Pause between batches (seconds)",
            {
                "type": "number_input",
                "action_id": ids.A_BATCH_PAUSE,
                "is_decimal_allowed": True,
                "min_value": "0",
                "max_value": "3600",
            },
            optional=True,
        )
    )
    meta = metadata(channel=channel_id, config=selected.id if selected else None)
    return modal(ids.NEW_BROADCAST, "New broadcast", blocks, submit="Create", private_metadata=meta)


def _agent_blocks(config: ConfigChoice) -> list[Block]:
    name = escape(config.name)
    if config.agent_name:
        return [
            section(
                f"*Agent:* {escape(config.agent_name)} — the primary agent of *{name}* "
                "gets every reply, with the broadcast as context.",
                block_id=ids.B_AGENT,
            )
        ]
    return [
        section(
            f"⚠️ *{name} has no primary agent*, so nobody would answer replies. "
            f"Assign one first: `broadcast-bot configs set-agent {name} AGENT`, "
            "or choose another configuration.",
            block_id=ids.B_AGENT,
        )
    ]


def add_contacts_modal(broadcast_id: str, broadcast_name: str, eligible: int) -> dict[str, Any]:
    blocks: list[Block] = [
        section(f"Add saved contacts to *{escape(broadcast_name)}*."),
        input_block(
            ids.B_CONTACTS,
            "Contacts",
            {
                "type": "multi_external_select",
                "action_id": ids.A_CONTACTS,
                "placeholder": plain("Search by name or number"),
                "min_query_length": 0,
            },
            optional=True,
        ),
        input_block(
            ids.B_ALL_ELIGIBLE,
            "Or everyone",
            {
                "type": "checkboxes",
                "action_id": ids.A_ALL_ELIGIBLE,
                "options": [
                    option(
                        f"Select all eligible contacts ({number(eligible)})",
                        ids.ALL_ELIGIBLE_VALUE,
                        "Leaves out test/sandbox and opted-out contacts",
                    )
                ],
            },
            optional=True,
        ),
    ]
    return modal(
        ids.ADD_CONTACTS,
        "Add contacts",
        blocks,
        submit="Add",
        private_metadata=metadata(broadcast=broadcast_id),
    )


@dataclass(frozen=True)
class SendSummary:
    broadcast_id: str
    name: str
    recipients: int
    template_name: str
    rendered: str
    rate_mps: float
    batch_size: int
    batch_pause_seconds: float
    estimate_seconds: float
    warnings: tuple[str, ...] = ()
    countries: tuple[tuple[str, int], ...] = ()  # (calling code, recipients), most first


def send_confirm_modal(s: SendSummary) -> dict[str, Any]:
    blocks: list[Block] = [
        section(
            f"Send *{escape(s.name)}* to *{number(s.recipients)} recipients* now?\n"
            f"Template `{escape(s.template_name)}`, as the first recipient reads it:"
        ),
        section(quote(escape(clip(s.rendered, PREVIEW_LIMIT)))),
        context(
            f"⏱️ Estimated time: {duration_text(s.estimate_seconds)} at {number(s.rate_mps)} msg/s "
            f"in batches "
            f"of {number(s.batch_size)}, {number(s.batch_pause_seconds)} s apart."
        ),
    ]
    if s.countries:
        blocks.append(context(f"🌍 Recipients by country: {countries_text(dict(s.countries))}"))
    for warning in s.warnings:
        blocks.append(section(f"⚠️ {warning}"))
    return modal(
        ids.SEND_CONFIRM,
        "Send broadcast",
        blocks,
        submit="Send now",
        private_metadata=metadata(broadcast=s.broadcast_id),
    )


def schedule_modal(
    broadcast_id: str,
    broadcast_name: str,
    *,
    initial: datetime,
    user_tz: str | None,
    current: datetime | None = None,
) -> dict[str, Any]:
    tz = user_tz or "your Slack timezone"
    blocks: list[Block] = [
        section(f"When should *{escape(broadcast_name)}* start sending?"),
        input_block(
            ids.B_WHEN,
            "Start at",
            {
                "type": "datetimepicker",
                "action_id": ids.A_WHEN,
                "initial_date_time": int(initial.timestamp()),
            },
            hint=f"In your timezone ({tz}); the card shows it in UTC too.",
        ),
    ]
    if current is not None:
        blocks.append(context(f"Currently scheduled for {current:%Y-%m-%d %H:%M} UTC."))
    return modal(
        ids.SCHEDULE,
        "Schedule broadcast",
        blocks,
        submit="Schedule",
        private_metadata=metadata(broadcast=broadcast_id),
    )


def send_test_modal(
    broadcast_id: str, broadcast_name: str, params: list[str], sample: dict[str, str]
) -> dict[str, Any]:
    blocks: list[Block] = [
        section(f"Send one message of *{escape(broadcast_name)}* to a phone you can check."),
        input_block(
            ids.B_PHONE,
            "Phone number",
            {
                "type": "plain_text_input",
                "action_id": ids.A_PHONE,
                "placeholder": plain("+14155550123"),
                "max_length": 32,
            },
            hint="International format with country code.",
        ),
    ]
    for name in params[:40]:
        element: dict[str, Any] = {
            "type": "plain_text_input",
            "action_id": ids.A_PARAM,
            "max_length": 1024,
        }
        if sample.get(name):
            element["initial_value"] = clip(sample[name], 1024)
        blocks.append(input_block(f"{ids.B_PARAM}{name}", f"Parameter {name}", element))
    return modal(
        ids.SEND_TEST,
        "Send a test",
        blocks,
        submit="Send test",
        private_metadata=metadata(broadcast=broadcast_id),
    )


def notice_modal(title: str, text: str) -> dict[str, Any]:
    """A modal that only says something (used as response_action=update after a submit)."""
    return modal("notice", title, [section(text)], close="Close")


@dataclass(frozen=True)
class EditChoices:
    """What the edit-draft modal offers: the draft, its config's approved templates, its imports."""

    broadcast_id: str
    name: str
    recipients: int
    template_id: int
    templates: tuple[TemplateChoice, ...]
    imports: tuple[tuple[int, str], ...]  # (import id, label) of imports with recipients left


def edit_draft_modal(c: EditChoices) -> dict[str, Any]:
    """Rename, change the template, remove recipients (by number, by import, all) in one go."""
    options = [template_option(t) for t in c.templates[:MAX_OPTIONS]]
    current = next(
        (o for o, t in zip(options, c.templates, strict=False) if t.id == c.template_id), None
    )
    template_select: dict[str, Any] = {
        "type": "static_select",
        "action_id": ids.A_EDIT_TEMPLATE,
        "options": options,
    }
    if current is not None:
        template_select["initial_option"] = current
    blocks: list[Block] = [
        input_block(
            ids.B_EDIT_NAME,
            "Name",
            {
                "type": "plain_text_input",
                "action_id": ids.A_EDIT_NAME,
                "initial_value": c.name,
                "max_length": 200,
            },
        ),
    ]
    if options:  # Slack refuses a select without options
        blocks += [
            input_block(
                ids.B_EDIT_TEMPLATE,
                "Template",
                template_select,
                hint="Every recipient is checked against the new template's parameters.",
            ),
            input_block(
                ids.B_EDIT_DROP_UNFIT,
                "If recipients lack the new template's parameters",
                {
                    "type": "checkboxes",
                    "action_id": ids.A_EDIT_DROP_UNFIT,
                    "options": [
                        option(
                            "Remove recipients that do not fit",
                            ids.CHECKED,
                            "Otherwise the change is refused and the ones lacking values are named",
                        )
                    ],
                },
                optional=True,
            ),
        ]
    blocks += [
        divider(),
        section(f"*Remove recipients* (now {number(c.recipients)}), optional:"),
        input_block(
            ids.B_EDIT_PHONES,
            "Numbers to remove",
            {
                "type": "plain_text_input",
                "action_id": ids.A_EDIT_PHONES,
                "multiline": True,
                "placeholder": plain("+14155550100, one or more per line"),
            },
            optional=True,
        ),
    ]
    if c.imports:
        blocks.append(
            input_block(
                ids.B_EDIT_IMPORT,
                "Undo an import",
                {
                    "type": "static_select",
                    "action_id": ids.A_EDIT_IMPORT,
                    "placeholder": plain("Remove every recipient a file or selection added"),
                    "options": [option(label, str(i)) for i, label in c.imports[:MAX_OPTIONS]],
                },
                optional=True,
            )
        )
    blocks.append(
        input_block(
            ids.B_EDIT_ALL,
            "Or everyone",
            {
                "type": "checkboxes",
                "action_id": ids.A_EDIT_ALL,
                "options": [option(f"Remove all {number(c.recipients)} recipients", ids.CHECKED)],
            },
            optional=True,
        )
    )
    return modal(
        ids.EDIT_DRAFT,
        "Edit draft",
        blocks,
        submit="Save",
        private_metadata=metadata(broadcast=c.broadcast_id),
    )


def retry_confirm_modal(
    broadcast_id: str, name: str, total: int, explanation: str
) -> dict[str, Any]:
    """What a retry would hold, before the draft is made."""
    blocks: list[Block] = [
        section(f"Make a new draft from *{name}* with *{number(total)} recipients* to retry?"),
        section(clip(explanation, PREVIEW_LIMIT)),
        context(
            "The draft gets its own card; nothing is sent until someone presses *Send* on it. "
            f"*{name}* itself stays as it is."
        ),
    ]
    return modal(
        ids.RETRY_CONFIRM,
        "Retry failed",
        blocks,
        submit="Make the draft",
        private_metadata=metadata(broadcast=broadcast_id),
    )
