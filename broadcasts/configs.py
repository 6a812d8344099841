"""WhatsApp configurations and agents: create, list, look up, assign the primary agent."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcasts import audit
from broadcasts.actors import Actor
from broadcasts.enums import AgentKind, Provider
from broadcasts.errors import NotFoundError, ValidationFailed
from broadcasts.models import Agent, WhatsAppConfig, utcnow
from broadcasts.pacing import SEED_BATCH_PAUSE_SECONDS, SEED_BATCH_SIZE, SEED_RATE_MPS
from broadcasts.urls import check_agent_url

log = logging.getLogger(__name__)

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
DIGITS_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
LIMIT_TIER = re.compile(r"(\d+)\s*([KM]?)", re.IGNORECASE)
# Messages/s of WhatsApp's throughput levels (Cloud API: 80 by default, 1,000 when upgraded, 20
# for numbers shared with the WhatsApp Business app); the client maps API answers the same way.
LEVEL_MPS = {"STANDARD": 80, "HIGH": 1000, "COEXISTENCE": 20}


def add_config(
    session: Session,
    *,
    name: str,
    provider: str,
    phone_number_id: str,
    business_account_id: str,
    by: Actor,
    api_base_url: str,
    credential_env: str,
    throughput_mps: int | None = None,
    display_phone_number: str | None = None,
    batch_size: int = SEED_BATCH_SIZE,
    batch_pause_seconds: float = SEED_BATCH_PAUSE_SECONDS,
    agent: str | None = None,
) -> WhatsAppConfig:
    """Create a configuration; it names the variable holding its credential, never the value.
    The provider's defaults for both are the provider's to know (kapso/settings.py).

    Without `throughput_mps` the rate is the seed's 50/s until the number's own throughput level
    is read from WhatsApp (record_limits).
    """
    name = name.strip()
    if not name:
        raise ValidationFailed("A configuration needs a name.", field="name")
    try:
        kind = Provider(provider)
    except ValueError:
        raise ValidationFailed(
            f"Unknown provider '{provider}': use kapso, meta or sandbox.", field="provider"
        ) from None
    for field, value in (
        ("phone_number_id", phone_number_id),
        ("business_account_id", business_account_id),
    ):
        if not DIGITS_ID.match(value or ""):
            raise ValidationFailed(
                f"{field} '{value}' is not an id (letters, digits, '-' or '_').", field=field
            )
    env = credential_env
    if not ENV_NAME.match(env):
        raise ValidationFailed(
            f"credential_env '{env}' must be the NAME of an environment variable "
            "(e.g. KAPSO_API_KEY), not the secret itself.",
            field="credential_env",
        )
    base = api_base_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValidationFailed(
            f"API base URL '{base}' must start with http(s)://.", field="api_base_url"
        )
    validate_pacing(
        throughput_mps=throughput_mps,
        batch_size=batch_size,
        batch_pause_seconds=batch_pause_seconds,
    )
    if get_config_or_none(session, name) is not None:
        raise ValidationFailed(f"A configuration named '{name}' already exists.", field="name")
    config = WhatsAppConfig(
        name=name,
        provider=kind,
        phone_number_id=phone_number_id,
        business_account_id=business_account_id,
        display_phone_number=display_phone_number,
        api_base_url=base,
        credential_env=env,
        throughput_mps=throughput_mps or SEED_RATE_MPS,
        batch_size=batch_size,
        batch_pause_seconds=batch_pause_seconds,
    )
    if agent:
        config.primary_agent = get_agent(session, agent)
    session.add(config)
    session.flush()
    audit.record(session, "config.add", actor=by.id, via=by.via, config=name, provider=kind.value)
    return config


def validate_pacing(
    *,
    throughput_mps: float | None = None,
    batch_size: int | None = None,
    batch_pause_seconds: float | None = None,
) -> None:
    if throughput_mps is not None and not 0 < throughput_mps <= 10_000:
        raise ValidationFailed(
            f"Throughput {throughput_mps} messages/s is out of range (1 to 10,000).",
            field="throughput",
        )
    if batch_size is not None and not 1 <= batch_size <= 100_000:
        raise ValidationFailed(
            f"Batch size {batch_size} is out of range (1 to 100,000).", field="batch_size"
        )
    if batch_pause_seconds is not None and not 0 <= batch_pause_seconds <= 3600:
        raise ValidationFailed(
            f"Pause between batches {batch_pause_seconds} s is out of range (0 to 3,600).",
            field="batch_pause",
        )


def list_configs(session: Session) -> list[WhatsAppConfig]:
    return list(session.scalars(select(WhatsAppConfig).order_by(WhatsAppConfig.name)))


def get_config_or_none(session: Session, ref: str | int) -> WhatsAppConfig | None:
    ref_s = str(ref).strip()
    config = session.scalar(select(WhatsAppConfig).where(WhatsAppConfig.name == ref_s))
    if config is None and ref_s.isdigit():
        config = session.get(WhatsAppConfig, int(ref_s))
    return config


def get_config(session: Session, ref: str | int) -> WhatsAppConfig:
    config = get_config_or_none(session, ref)
    if config is None:
        names = ", ".join(c.name for c in list_configs(session)) or "none yet"
        raise NotFoundError(f"No WhatsApp configuration '{ref}' (known: {names}).")
    return config


def config_for_phone_number_id(session: Session, phone_number_id: str) -> WhatsAppConfig | None:
    return session.scalar(
        select(WhatsAppConfig).where(WhatsAppConfig.phone_number_id == phone_number_id).limit(1)
    )


def set_primary_agent(
    session: Session, config_ref: str, agent_ref: str, *, by: Actor
) -> WhatsAppConfig:
    config = get_config(session, config_ref)
    agent = get_agent(session, agent_ref)
    config.primary_agent = agent
    audit.record(
        session, "config.set_agent", actor=by.id, via=by.via, config=config.name, agent=agent.name
    )
    session.flush()
    return config


def set_pacing(
    session: Session,
    config_ref: str,
    *,
    by: Actor,
    throughput_mps: int | None = None,
    batch_size: int | None = None,
    batch_pause_seconds: float | None = None,
) -> WhatsAppConfig:
    config = get_config(session, config_ref)
    validate_pacing(
        throughput_mps=throughput_mps,
        batch_size=batch_size,
        batch_pause_seconds=batch_pause_seconds,
    )
    if throughput_mps is not None:
        config.throughput_mps = throughput_mps
    if batch_size is not None:
        config.batch_size = batch_size
    if batch_pause_seconds is not None:
        config.batch_pause_seconds = batch_pause_seconds
    audit.record(
        session,
        "config.set_pacing",
        actor=by.id,
        via=by.via,
        config=config.name,
        throughput_mps=config.throughput_mps,
        batch_size=config.batch_size,
        batch_pause_seconds=config.batch_pause_seconds,
    )
    return config


@dataclass(frozen=True)
class Limits:
    """A phone number's sending limits as WhatsApp reported them (None: not reported)."""

    throughput_level: str | None
    throughput_mps: int | None
    messaging_limit: str | None


def level_mps(level: str | None) -> int | None:
    if not level:
        return None
    return int(level) if level.isdigit() else LEVEL_MPS.get(level.upper())


def tier_limit(tier: str | None) -> int | None:
    """People per 24 h of a messaging limit tier: TIER_2K → 2000, TIER_250 → 250;
    None for TIER_UNLIMITED or an unknown value."""
    if not tier or "UNLIMITED" in tier.upper():
        return None
    match = LIMIT_TIER.search(tier)
    if not match:
        return None
    return int(match.group(1)) * {"": 1, "K": 1000, "M": 1_000_000}[match.group(2).upper()]


def record_limits(
    session: Session,
    config_ref: str | int,
    limits: Limits,
    *,
    rate_from_level: bool = True,
    at: datetime | None = None,
) -> list[str]:
    """Store what WhatsApp says about the number; returns what changed, in words.

    The rate follows the throughput level while it is the level's (or the seed's 50/s before any
    level was known); a rate set by hand is kept, but never above what the number allows.
    `rate_from_level=False` keeps a rate the caller has just set by hand.
    """
    config = get_config(session, config_ref)
    changes: list[str] = []
    if limits.throughput_level and limits.throughput_level != config.throughput_level:
        changes.append(
            f"throughput level {config.throughput_level or 'unknown'} → {limits.throughput_level}"
        )
    if limits.messaging_limit and limits.messaging_limit != config.messaging_limit:
        changes.append(
            f"messaging limit {config.messaging_limit or 'unknown'} → {limits.messaging_limit}"
        )
    allowed = limits.throughput_mps
    if allowed is not None:
        derived = config.throughput_mps == (level_mps(config.throughput_level) or SEED_RATE_MPS)
        rate = allowed if rate_from_level and derived else min(config.throughput_mps, allowed)
        if rate != config.throughput_mps:
            changes.append(f"rate {config.throughput_mps}/s → {rate}/s")
            log.info("configuration %s: rate %s/s → %s/s", config.name, config.throughput_mps, rate)
            config.throughput_mps = rate
    config.throughput_level = limits.throughput_level or config.throughput_level
    config.messaging_limit = limits.messaging_limit or config.messaging_limit
    config.limits_checked_at = at or utcnow()
    session.flush()
    return changes


def add_agent(
    session: Session,
    *,
    name: str,
    kind: str,
    by: Actor,
    url: str | None = None,
    secret_env: str | None = None,
    channel_id: str | None = None,
    allow_private_urls: bool = False,
) -> Agent:
    """Add an agent; a webhook agent's URL must be https on a public address unless
    `allow_private_urls` (AGENT_ALLOW_PRIVATE_URLS) says local addresses are fine."""
    name = name.strip()
    if not name:
        raise ValidationFailed("An agent needs a name.", field="name")
    try:
        agent_kind = AgentKind(kind)
    except ValueError:
        raise ValidationFailed(
            f"Unknown agent kind '{kind}': use webhook or slack.", field="kind"
        ) from None
    if agent_kind is AgentKind.WEBHOOK:
        if not url or not url.startswith(("http://", "https://")):
            raise ValidationFailed(
                "A webhook agent needs a URL starting with http(s)://.", field="url"
            )
        url = check_agent_url(url, allow_private=allow_private_urls)
        if secret_env is not None and not ENV_NAME.match(secret_env):
            raise ValidationFailed(
                f"secret_env '{secret_env}' must be the NAME of an environment variable.",
                field="secret_env",
            )
    elif not channel_id:
        raise ValidationFailed(
            "A slack agent needs the id of the channel where people answer.", field="channel"
        )
    if session.scalar(select(Agent.id).where(Agent.name == name)) is not None:
        raise ValidationFailed(f"An agent named '{name}' already exists.", field="name")
    agent = Agent(
        name=name,
        kind=agent_kind,
        url=url,
        secret_env=secret_env,
        channel_id=channel_id,
    )
    session.add(agent)
    session.flush()
    audit.record(session, "agent.add", actor=by.id, via=by.via, agent=name, kind=agent_kind.value)
    return agent


def list_agents(session: Session) -> list[Agent]:
    return list(session.scalars(select(Agent).order_by(Agent.name)))


def get_agent(session: Session, ref: str | int) -> Agent:
    ref_s = str(ref).strip()
    agent = session.scalar(select(Agent).where(Agent.name == ref_s))
    if agent is None and ref_s.isdigit():
        agent = session.get(Agent, int(ref_s))
    if agent is None:
        names = ", ".join(a.name for a in list_agents(session)) or "none yet"
        raise NotFoundError(f"No agent '{ref}' (known: {names}).")
    return agent
