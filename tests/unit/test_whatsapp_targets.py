"""From a stored configuration and template to what the WhatsApp client needs."""

from __future__ import annotations

import pytest

from broadcasts.errors import SettingsError
from broadcasts.models import Template, WhatsAppConfig
from jobs.whatsapp_targets import spec_for, target_for


def config(provider: str = "kapso", env: str = "KAPSO_API_KEY") -> WhatsAppConfig:
    return WhatsAppConfig(
        name="main",
        provider=provider,
        phone_number_id="1001",
        business_account_id="2002",
        api_base_url="https://api.kapso.ai/meta/whatsapp/v24.0",
        credential_env=env,
    )


def test_the_credential_is_read_from_the_named_variable() -> None:
    target = target_for(config(), {"KAPSO_API_KEY": "k-123"})
    assert target.headers() == {"X-API-Key": "k-123"}
    assert (target.phone_number_id, target.business_account_id) == ("1001", "2002")
    assert "k-123" not in repr(target)


def test_meta_uses_a_bearer_token() -> None:
    target = target_for(config("meta", "META_ACCESS_TOKEN"), {"META_ACCESS_TOKEN": "EAAG"})
    assert target.headers() == {"Authorization": "Bearer EAAG"}


def test_a_missing_credential_names_the_variable_and_the_configuration() -> None:
    with pytest.raises(SettingsError) as info:
        target_for(config(), {})
    assert str(info.value) == (
        "KAPSO_API_KEY is not set: configuration 'main' needs it to call the WhatsApp API."
    )


def test_the_sandbox_falls_back_to_its_well_known_key() -> None:
    assert target_for(config("sandbox"), {}).credential == "sandbox-key"


def test_spec_carries_the_stored_template_columns() -> None:
    template = Template(
        name="welcome",
        language="es",
        parameter_format="NAMED",
        parameter_names=["first_name"],
        components=[{"type": "BODY", "text": "Hola {{first_name}}"}],
    )
    spec = spec_for(template)
    assert (spec.name, spec.language, spec.parameter_format) == ("welcome", "es", "NAMED")
    assert spec.parameter_names == ["first_name"] and spec.components[0]["type"] == "BODY"
