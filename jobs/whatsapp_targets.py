"""From stored configurations and templates to what the WhatsApp client takes: the API target
(where, with which credential) and the template spec; a failed call an operator asked for."""

from __future__ import annotations

import os
from collections.abc import Mapping

from broadcasts.enums import Provider
from broadcasts.errors import BroadcastBotError, SettingsError
from broadcasts.models import Template, WhatsAppConfig
from kapso.client import ApiTarget
from kapso.errors import WhatsAppError
from kapso.settings import SANDBOX_API_KEY
from kapso.templates import TemplateSpec


class WhatsAppCallFailed(BroadcastBotError):
    """A WhatsApp API call an operator asked for failed; the message says why and what to do."""

    def __init__(self, error: WhatsAppError) -> None:
        super().__init__(str(error))
        self.error = error


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
        # The local sandbox accepts a well-known key: a sandbox configuration works unset.
        credential = SANDBOX_API_KEY
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
