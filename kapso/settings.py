"""The WhatsApp providers' settings: API URLs, keys and webhook secrets, read from the environment
(and `.env`) under the same variable names as ever; per-provider defaults for a new
configuration; the local sandbox's well-known credential."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_KAPSO_API_URL = "https://api.kapso.ai/meta/whatsapp/v24.0"
DEFAULT_META_API_URL = "https://graph.facebook.com/v24.0"
DEFAULT_KAPSO_PLATFORM_URL = "https://api.kapso.ai/platform/v1"
# `broadcast-bot sandbox` listens here unless told otherwise.
DEFAULT_SANDBOX_API_URL = "http://127.0.0.1:8081/v24.0"
# The key the local sandbox accepts unless started with another: not a secret, and never used
# for a real provider.
SANDBOX_API_KEY = "sandbox-key"

# Per provider: the API base URL and the NAME of the variable holding the credential.
DEFAULT_BASE_URL = {
    "kapso": DEFAULT_KAPSO_API_URL,
    "meta": DEFAULT_META_API_URL,
    "sandbox": DEFAULT_SANDBOX_API_URL,
}
DEFAULT_CREDENTIAL_ENV = {
    "kapso": "KAPSO_API_KEY",
    "meta": "META_ACCESS_TOKEN",
    "sandbox": "KAPSO_API_KEY",
}


def provider_defaults(provider: str) -> dict[str, str]:
    """A new configuration's `api_base_url` and `credential_env` for `provider` (empty for a
    provider we do not know: the configuration service refuses it by name)."""
    if provider not in DEFAULT_BASE_URL:
        return {}
    return {
        "api_base_url": DEFAULT_BASE_URL[provider],
        "credential_env": DEFAULT_CREDENTIAL_ENV[provider],
    }


class ProviderSettings(BaseSettings):
    """Kapso's and Meta's URLs and secrets; secrets stay out of reprs (and logs: bot/ops/logs.py
    masks every secret-named setting's value)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    kapso_api_key: str | None = Field(default=None, repr=False)
    kapso_api_url: str = DEFAULT_KAPSO_API_URL
    kapso_platform_url: str = DEFAULT_KAPSO_PLATFORM_URL
    meta_api_url: str = DEFAULT_META_API_URL
    whatsapp_app_secret: str | None = Field(default=None, repr=False)
    whatsapp_verify_token: str | None = Field(default=None, repr=False)
    kapso_webhook_secret: str | None = Field(default=None, repr=False)
