"""Settings read from the environment (and a `.env` file); docs/operations.md lists them: all
but the WhatsApp providers', which live with the provider (kapso/settings.py); the processes read
both as one object (jobs/settings.py)."""

from __future__ import annotations

from functools import cached_property
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from broadcasts.errors import SettingsError

T = TypeVar("T", bound=BaseSettings)

DEFAULT_OPT_OUT_KEYWORDS = (
    "stop,stopall,unsubscribe,cancel,end,quit,opt out,optout,"
    "baja,parar,alto,detener,"  # es
    "sair,cancelar,pare,"  # pt
    "arret,arrêt,stopper,desabonner,désabonner,"  # fr
    "abmelden,austragen,"  # de
    "annulla,disiscrivi"  # it
)
DEFAULT_OPT_IN_KEYWORDS = "start,unstop,subscribe,resume"


class CoreSettings(BaseSettings):
    """Database, Redis, Slack, recipients, replies, web, workers; secrets stay out of reprs."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str = "sqlite:///./broadcasts.db"
    redis_url: str = "redis://localhost:6379/0"
    slack_bot_token: str | None = Field(default=None, repr=False)
    slack_signing_secret: str | None = Field(default=None, repr=False)
    slack_app_token: str | None = Field(default=None, repr=False)
    slack_api_url: str = "https://slack.com/api/"
    # Slack card edits: at most one per card per this many seconds, and a shared workspace budget.
    slack_card_update_seconds: float = Field(default=1.0, gt=0)
    slack_updates_per_minute: int = Field(default=40, gt=0)
    broadcast_admins: str = ""

    # Recipients
    phone_default_region: str | None = Field(default=None, min_length=2, max_length=2)
    csv_max_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    # Replies and conversations
    reply_attribution_hours: float = Field(default=72.0, gt=0)
    conversation_inactivity_hours: float = Field(default=24.0, gt=0)
    opt_out_keywords: str = DEFAULT_OPT_OUT_KEYWORDS
    opt_in_keywords: str = DEFAULT_OPT_IN_KEYWORDS
    # Web server and logs
    port: int = Field(default=8000, gt=0, lt=65536)
    webhook_max_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    # Webhook inbox and agent deliveries
    inbox_requeue_after_seconds: float = Field(default=60.0, gt=0)
    inbox_max_attempts: int = Field(default=5, gt=0)
    agent_max_attempts: int = Field(default=10, gt=0)
    agent_timeout_seconds: float = Field(default=10.0, gt=0)
    # Agents on http:// or private/loopback/link-local addresses (the demo, tests, local dev).
    agent_allow_private_urls: bool = False
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    metrics_token: str | None = Field(
        default=None, repr=False
    )  # when set, GET /metrics needs "Authorization: Bearer <it>"
    # Sending
    send_lanes: int = Field(default=2, ge=1, le=32)
    send_claim_grace_seconds: float = Field(default=120.0, gt=0)
    maintenance_interval_seconds: float = Field(default=1.0, gt=0)
    public_base_url: str | None = None

    @field_validator("phone_default_region")
    @classmethod
    def _upper_region(cls, value: str | None) -> str | None:
        return value.upper() if value else None

    @cached_property
    def admin_ids(self) -> frozenset[str]:
        """Slack user and user-group ids allowed to send (empty: everyone)."""
        return frozenset(p.strip() for p in self.broadcast_admins.split(",") if p.strip())

    @cached_property
    def opt_out_words(self) -> frozenset[str]:
        return frozenset(
            w.strip().casefold() for w in self.opt_out_keywords.split(",") if w.strip()
        )

    @cached_property
    def opt_in_words(self) -> frozenset[str]:
        return frozenset(w.strip().casefold() for w in self.opt_in_keywords.split(",") if w.strip())

    def require(self, field: str, why: str) -> str:
        """Return a setting a command cannot do without, or stop with one line naming it."""
        value = getattr(self, field)
        if not value:
            raise SettingsError(f"{field.upper()} is not set: {why}.")
        return str(value)


def read_settings(cls: type[T], **overrides: Any) -> T:
    """Read settings of `cls`, turning a validation error into one line naming the variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise SettingsError(f"{name} is invalid: {first['msg']}.") from None
