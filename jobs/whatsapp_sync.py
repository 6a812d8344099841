"""Reading a configuration's templates and limits from WhatsApp and storing them (template sync)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from broadcasts.configs import Limits, get_config, record_limits
from broadcasts.db import transaction
from broadcasts.enums import TemplateStatus
from broadcasts.errors import BroadcastBotError, NotFoundError
from broadcasts.templates import (
    SyncResult,
    TemplateData,
    list_templates,
    set_status,
    upsert_templates,
)
from jobs.runtime import Runtime
from jobs.whatsapp_targets import WhatsAppCallFailed, target_for
from kapso.client import ApiTarget, NumberLimits, TemplatePage, WhatsAppClient
from kapso.errors import WhatsAppError
from kapso.templates import WaTemplate

log = logging.getLogger(__name__)

GONE_REASON = "no longer on the WhatsApp Business Account"


@dataclass(frozen=True)
class TemplateSyncResult(SyncResult):
    """A sync's counts, plus the templates left out because we cannot send them."""

    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    limits: LimitsResult | None = None
    limits_error: str | None = None


@dataclass(frozen=True)
class LimitsResult:
    """A configuration's limits after reading them from WhatsApp, and what changed."""

    config_name: str
    throughput_level: str | None
    throughput_mps: int
    messaging_limit: str | None
    changes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        level = self.throughput_level or "unknown"
        tier = self.messaging_limit or "unknown"
        return f"throughput {level} ({self.throughput_mps}/s), messaging limit {tier}"


def template_data(template: WaTemplate) -> TemplateData:
    return TemplateData(
        name=template.name,
        language=template.language,
        category=template.category,
        status=template.status,
        parameter_format=template.parameter_format,
        parameter_names=list(template.parameter_names),
        body_text=template.body_text,
        components=list(template.components),
        external_id=template.id or None,
        status_reason=template.status_reason,
    )


async def _fetch(target: ApiTarget) -> TemplatePage:
    async with WhatsAppClient(max_in_flight=4) as client:
        return await client.fetch_templates(target)


async def _fetch_limits(target: ApiTarget) -> NumberLimits:
    async with WhatsAppClient(max_in_flight=2) as client:
        return await client.get_number_limits(target)


def refresh_limits(
    runtime: Runtime, config_ref: str | int, *, rate_from_level: bool = True
) -> LimitsResult:
    """Read the number's throughput level and messaging limit tier from WhatsApp and store them
    (the rate follows the level unless it was set by hand; see record_limits)."""
    with transaction(runtime.sessions) as session:
        config = get_config(session, config_ref)
        target = target_for(config)
    try:
        found = asyncio.run(_fetch_limits(target))
    except WhatsAppError as exc:
        raise WhatsAppCallFailed(exc) from None
    limits = Limits(found.throughput_level, found.throughput_mps, found.messaging_limit)
    with transaction(runtime.sessions) as session:
        changes = record_limits(session, config_ref, limits, rate_from_level=rate_from_level)
        config = get_config(session, config_ref)
        if found.display_phone_number and not config.display_phone_number:
            config.display_phone_number = found.display_phone_number[:32]
        return LimitsResult(
            config.name,
            config.throughput_level,
            config.throughput_mps,
            config.messaging_limit,
            changes,
        )


def sync_templates(runtime: Runtime, config_ref: str | int) -> TemplateSyncResult:
    """Store every template of the configuration's WABA; re-syncs record status changes.

    Templates gone from the WABA are marked DELETED; ones we cannot send are reported as skipped.
    """
    with transaction(runtime.sessions) as session:
        config = get_config(session, config_ref)
        target = target_for(config)
    try:
        page = asyncio.run(_fetch(target))
    except WhatsAppError as exc:
        raise WhatsAppCallFailed(exc) from None
    if not page.templates and not page.unsupported:
        raise NotFoundError(
            f"The WhatsApp Business Account {target.business_account_id} of configuration "
            f"'{target.config_name}' has no message templates: create one in WhatsApp Manager, "
            "wait for its approval, then sync again."
        )
    with transaction(runtime.sessions) as session:
        config = get_config(session, config_ref)
        result = upsert_templates(session, config, [template_data(t) for t in page.templates])
        fetched = {(t.name, t.language) for t in page.templates}
        changes = list(result.status_changes)
        for row in list_templates(session, config):
            if (row.name, row.language) not in fetched and row.status != TemplateStatus.DELETED:
                changes.append((f"{row.name}:{row.language}", row.status, TemplateStatus.DELETED))
                set_status(session, row, TemplateStatus.DELETED, GONE_REASON)
    for name, reason in page.unsupported:
        log.info("configuration %s: skipped %s (%s)", target.config_name, name, reason)
    limits, limits_error = None, None
    try:
        limits = refresh_limits(runtime, config_ref)
    except BroadcastBotError as exc:  # the templates are synced; the limits stay as they were
        log.warning("configuration %s: limits not refreshed: %s", target.config_name, exc)
        limits_error = str(exc)
    return TemplateSyncResult(
        added=result.added,
        updated=result.updated,
        unchanged=result.unchanged,
        status_changes=changes,
        skipped=list(page.unsupported),
        limits=limits,
        limits_error=limits_error,
    )
