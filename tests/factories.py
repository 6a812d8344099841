"""Builders of domain objects for tests, going through the same services as users do."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcasts import configs, service
from broadcasts.actors import Actor
from broadcasts.models import Broadcast, Recipient, WhatsAppConfig
from broadcasts.recipients import NewRecipient, insert_recipients
from broadcasts.templates import TemplateData, upsert_templates
from kapso.settings import provider_defaults

OPERATOR = Actor(id="cli:test", via="cli")

POSITIONAL = TemplateData(
    name="holiday_promotion",
    language="en_US",
    category="MARKETING",
    status="APPROVED",
    parameter_format="POSITIONAL",
    parameter_names=["1"],
    body_text="Hi {{1}}, check out our special holiday offers!",
    components=[{"type": "BODY", "text": "Hi {{1}}, check out our special holiday offers!"}],
)
PAUSED = TemplateData(
    name="old_promo",
    language="en_US",
    category="MARKETING",
    status="PAUSED",
    parameter_format="POSITIONAL",
    parameter_names=[],
    body_text="Our old promotion",
)


def make_config(
    session: Session, name: str = "main", *, with_agent: bool = True, **kw: Any
) -> WhatsAppConfig:
    agent = None
    if with_agent:
        agent = f"{name}-agent"
        configs.add_agent(
            session,
            name=agent,
            kind="webhook",
            url="http://127.0.0.1:9/agent",
            by=OPERATOR,
            allow_private_urls=True,
        )
    provider = kw.pop("provider", "sandbox")
    config = configs.add_config(
        session,
        name=name,
        provider=provider,
        phone_number_id=kw.pop("phone_number_id", "100200300"),
        business_account_id=kw.pop("business_account_id", "900800700"),
        agent=agent,
        by=OPERATOR,
        **{**provider_defaults(provider), **kw},
    )
    upsert_templates(session, config, [POSITIONAL, PAUSED])
    return config


def make_broadcast(
    session: Session, name: str = "Holiday Sale", *, config: str = "main"
) -> Broadcast:
    if configs.get_config_or_none(session, config) is None:
        make_config(session, config)
    return service.create_broadcast(
        session, name=name, config_ref=config, template_ref="holiday_promotion", by=OPERATOR
    )


def add_recipients(session: Session, broadcast: Broadcast, phones: list[str]) -> list[Recipient]:
    insert_recipients(session, broadcast, [NewRecipient(p, {"1": "Ana"}) for p in phones])
    return list(
        session.scalars(
            select(Recipient).where(Recipient.broadcast_id == broadcast.id).order_by(Recipient.id)
        )
    )
