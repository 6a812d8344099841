"""From stored configurations and templates to the WhatsApp client; template sync."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from broadcasts.configs import get_config
from broadcasts.db import transaction
from broadcasts.enums import Provider, TemplateStatus
from broadcasts.errors import BroadcastBotError, NotFoundError, SettingsError
from broadcasts.models import Template, WhatsAppConfig
from broadcasts.templates import (
    SyncResult,
    TemplateData,
    list_templates,
    set_status,
    upsert_templates,
)
from jobs.runtime import Runtime
from kapso.client import ApiTarget, TemplatePage, WhatsAppClient
from kapso.errors import WhatsAppError
from kapso.sandbox.config import SandboxConfig
from kapso.templates import TemplateSpec, WaTemplate

log = logging.getLogger(__name__)

GONE_REASON = "no longer on the WhatsApp Business Account"


class WhatsAppCallFailed(BroadcastBotError):
    """A WhatsApp API call an operator asked for failed; the message says why and what to do."""

    def __init__(self, error: WhatsAppError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class TemplateSyncResult(SyncResult):
    """A sync's counts, plus the templates left out because we cannot send them."""

    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)


def _dotenv_value(name: str) -> str | None:
    try:
        from dotenv import dotenv_values
    except ImportError:  # pragma: no cover
        return None
    value = dotenv_values(".env").get(name) if os.path.exists(".env") else None
    return value or None


def target_for(config: WhatsAppConfig, environ: Mapping[str, str] = os.environ) -> ApiTarget:
    """Where and with which credential to call WhatsApp for `config` (never stored, only read)."""
    name = config.credential_env
    credential = environ.get(name) or (_dotenv_value(name) if environ is os.environ else None)
    if not credential and config.provider == Provider.SANDBOX:
        credential = SandboxConfig.api_key  # the local sandbox's well-known default
    if not credential:
        raise SettingsError(
            f"{name} is not set: configuration '{config.name}' needs it to call the WhatsApp API."
        )
    return ApiTarget(
        config_name=config.name,
        provider=str(config.provider),
        base_url=config.api_base_url,
        phone_number_id=config.phone_number_id,
        business_account_id=config.business_account_id,
        credential=credential,
        credential_env=name,
    )


def spec_for(template: Template) -> TemplateSpec:
    return TemplateSpec(
        name=template.name,
        language=template.language,
        parameter_format=template.parameter_format,
        parameter_names=[str(n) for n in template.parameter_names or []],
        components=list(template.components or []),
    )


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
    return TemplateSyncResult(
        added=result.added,
        updated=result.updated,
        unchanged=result.unchanged,
        status_changes=changes,
        skipped=list(page.unsupported),
    )
