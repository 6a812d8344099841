"""SQLAlchemy 2.0 models of the domain; the schema itself lives in migrations/."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from broadcasts.enums import (
    BroadcastStatus,
    DeliveryStatus,
    ImportStatus,
    RecipientStatus,
)

# BIGINT primary keys on PostgreSQL; SQLite only auto-increments INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite forgets the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Agent(TimestampMixin, Base):
    """Who answers replies: a webhook (HMAC-signed POST) or a Slack channel."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(String(2048))
    # Name of the environment variable holding the HMAC secret; never the secret itself.
    secret_env: Mapped[str | None] = mapped_column(String(64))
    # A chat agent's channel, where people answer in threads (the column keeps its first name).
    channel_id: Mapped[str | None] = mapped_column("slack_channel_id", String(32))


class WhatsAppConfig(TimestampMixin, Base):
    """A WhatsApp number we send from, through Kapso, Meta directly or the sandbox."""

    __tablename__ = "whatsapp_configs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    provider: Mapped[str] = mapped_column(String(16))
    phone_number_id: Mapped[str] = mapped_column(String(64), index=True)
    business_account_id: Mapped[str] = mapped_column(String(64))
    display_phone_number: Mapped[str | None] = mapped_column(String(32))
    api_base_url: Mapped[str] = mapped_column(String(512))
    # Name of the environment variable holding the credential; never the credential itself.
    credential_env: Mapped[str] = mapped_column(String(64), default="KAPSO_API_KEY")
    throughput_mps: Mapped[int] = mapped_column(Integer, default=80)
    # As WhatsApp reports them on the phone number (see broadcasts.configs): e.g. STANDARD and
    # TIER_1K; None until read.
    throughput_level: Mapped[str | None] = mapped_column(String(32))
    messaging_limit: Mapped[str | None] = mapped_column(String(32))
    limits_checked_at: Mapped[datetime | None] = mapped_column()
    batch_size: Mapped[int] = mapped_column(Integer, default=500)
    batch_pause_seconds: Mapped[float] = mapped_column(Float, default=10.0)
    # Share of the throughput kept free for inbound replies and other traffic.
    headroom: Mapped[float] = mapped_column(Float, default=0.0)
    primary_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )

    primary_agent: Mapped[Agent | None] = relationship(lazy="joined")


class Template(Base):
    """A message template synced from the WABA behind a configuration."""

    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("config_id", "name", "language"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    config_id: Mapped[int] = mapped_column(ForeignKey("whatsapp_configs.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    parameter_format: Mapped[str] = mapped_column(String(16))
    parameter_names: Mapped[list[Any]] = mapped_column(default=list)
    components: Mapped[list[Any]] = mapped_column(default=list)
    body_text: Mapped[str] = mapped_column(Text, default="")
    status_reason: Mapped[str | None] = mapped_column(String(255))
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    config: Mapped[WhatsAppConfig] = relationship()


class Contact(TimestampMixin, Base):
    """A person we can message, known by E.164 number, business-scoped user id, or both."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # None for a WhatsApp user who hides their number behind a username (then user_id is set).
    phone: Mapped[str | None] = mapped_column(String(20), unique=True)
    wa_id: Mapped[str | None] = mapped_column(String(32), index=True)
    user_id: Mapped[str | None] = mapped_column(String(140), unique=True)  # BSUID
    username: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[datetime | None] = mapped_column()
    opt_out_reason: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(32), default="import")
    last_inbound_at: Mapped[datetime | None] = mapped_column()


class Broadcast(TimestampMixin, Base):
    """One template sent to many recipients from one configuration."""

    __tablename__ = "broadcasts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(200), index=True)
    config_id: Mapped[int] = mapped_column(ForeignKey("whatsapp_configs.id"))
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))
    status: Mapped[str] = mapped_column(String(16), default=BroadcastStatus.DRAFT, index=True)
    status_reason: Mapped[str | None] = mapped_column(Text)
    scheduled_at: Mapped[datetime | None] = mapped_column()
    # Pacing overrides; None means "use the configuration's".
    batch_size: Mapped[int | None] = mapped_column(Integer)
    batch_pause_seconds: Mapped[float | None] = mapped_column(Float)
    rate_mps: Mapped[float | None] = mapped_column(Float)
    failure_threshold: Mapped[float | None] = mapped_column(Float)
    # Where the broadcast's card lives: the channel, the card message's id and the workspace,
    # as the chat adapter names them (the columns keep their first, Slack-specific names).
    channel_id: Mapped[str | None] = mapped_column("slack_channel_id", String(32))
    card_message_id: Mapped[str | None] = mapped_column("slack_card_ts", String(32), index=True)
    workspace_id: Mapped[str | None] = mapped_column("slack_team_id", String(32))
    created_by: Mapped[str] = mapped_column(String(64))
    created_via: Mapped[str] = mapped_column(String(16), default="cli")
    # A "Retry failed" broadcast points at the broadcast whose recipients it sends to again.
    retry_of_id: Mapped[str | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="SET NULL"), index=True
    )
    # Counters (always equal to a recount of recipients; see broadcasts.metrics).
    total_count: Mapped[int] = mapped_column(Integer, default=0)
    pending_count: Mapped[int] = mapped_column(Integer, default=0)
    sent_count: Mapped[int] = mapped_column(Integer, default=0)
    delivered_count: Mapped[int] = mapped_column(Integer, default=0)
    read_count: Mapped[int] = mapped_column(Integer, default=0)
    responded_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    skipped_count: Mapped[int] = mapped_column(Integer, default=0)
    opted_out_count: Mapped[int] = mapped_column(Integer, default=0)
    # Engine bookkeeping
    started_at: Mapped[datetime | None] = mapped_column()
    paused_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    batches_done: Mapped[int] = mapped_column(Integer, default=0)
    next_batch_at: Mapped[datetime | None] = mapped_column()
    version: Mapped[int] = mapped_column(Integer, default=0)

    config: Mapped[WhatsAppConfig] = relationship(lazy="joined")
    template: Mapped[Template] = relationship(lazy="joined")
    agent: Mapped[Agent] = relationship(lazy="joined")


class Recipient(Base):
    """One phone number of a broadcast, with its send and delivery history."""

    __tablename__ = "recipients"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "phone"),
        Index("ix_recipients_broadcast_status_next", "broadcast_id", "status", "next_attempt_at"),
        Index(
            "ix_recipients_wa_id",
            "wa_id",
            postgresql_where=text("wa_id IS NOT NULL"),
            sqlite_where=text("wa_id IS NOT NULL"),
        ),
        # user_id is known only after a send: imported rows take no entry (migration 0019).
        Index(
            "ix_recipients_user_id",
            "user_id",
            postgresql_where=text("user_id IS NOT NULL"),
            sqlite_where=text("user_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # broadcast_id, import_id and contact_id have no FOREIGN KEY (per-row triggers that cost a
    # bulk import half its speed on PostgreSQL): every insert is for a broadcast and contacts
    # read in the same transaction, and broadcasts, imports and contacts are never deleted
    # (migrations 0015 and 0019).
    broadcast_id: Mapped[str] = mapped_column(String(36))
    contact_id: Mapped[int | None] = mapped_column(BigId)
    import_id: Mapped[int | None] = mapped_column(BigId)
    phone: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=RecipientStatus.PENDING)
    wamid: Mapped[str | None] = mapped_column(String(128), unique=True)
    wa_id: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str | None] = mapped_column(String(140))  # BSUID, from statuses
    # wamids of earlier sends of this row (a retried asynchronous failure), oldest first.
    wamid_history: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    message_status: Mapped[str | None] = mapped_column(String(40))
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_title: Mapped[str | None] = mapped_column(String(255))
    error_detail: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    claimed_at: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()
    read_at: Mapped[datetime | None] = mapped_column()
    responded_at: Mapped[datetime | None] = mapped_column()
    failed_at: Mapped[datetime | None] = mapped_column()
    skipped_at: Mapped[datetime | None] = mapped_column()
    # Replied with an opt-out keyword (STOP): an opt-out, not a response.
    opted_out_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TestSend(Base):
    """One test message of a broadcast, so a reply to it reaches the agent with its context."""

    __tablename__ = "test_sends"
    __test__ = False  # not a pytest test class

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    broadcast_id: Mapped[str] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(20), index=True)
    wamid: Mapped[str] = mapped_column(String(128), unique=True)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    sent_by: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)


class Import(Base):
    """One CSV file or contact selection added to a broadcast (or to the contact list)."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    broadcast_id: Mapped[str | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ImportStatus.QUEUED)
    filename: Mapped[str | None] = mapped_column(String(255))
    # The chat platform's id of an uploaded file, so a re-delivered upload is imported once.
    source_file_id: Mapped[str | None] = mapped_column("slack_file_id", String(32), unique=True)
    encoding: Mapped[str | None] = mapped_column(String(32))
    delimiter: Mapped[str | None] = mapped_column(String(4))
    region: Mapped[str | None] = mapped_column(String(2))
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    invalid: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    already_present: Mapped[int] = mapped_column(Integer, default=0)
    opted_out: Mapped[int] = mapped_column(Integer, default=0)
    test_excluded: Mapped[int] = mapped_column(Integer, default=0)
    invalid_by_reason: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Accepted rows per calling code ("+44": 120), so a wrong region shows before sending.
    accepted_by_country: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    assume_international: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    error_report: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()


class InboxEvent(Base):
    """A webhook body exactly as received, stored before it is acknowledged."""

    __tablename__ = "inbox_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    dedup_key: Mapped[str] = mapped_column(String(128), unique=True)
    event_type: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class Conversation(Base):
    """A thread of messages between one configuration and one contact."""

    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_config_contact", "config_id", "contact_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    config_id: Mapped[int] = mapped_column(ForeignKey("whatsapp_configs.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    broadcast_id: Mapped[str | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="SET NULL")
    )
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    external_id: Mapped[str | None] = mapped_column(String(64))
    # Where a chat agent's people see this conversation: channel and thread (columns keep their
    # first, Slack-specific names).
    channel_id: Mapped[str | None] = mapped_column("slack_channel_id", String(32))
    thread_id: Mapped[str | None] = mapped_column("slack_thread_ts", String(32), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_inbound_at: Mapped[datetime | None] = mapped_column()


class Message(Base):
    """An inbound or outbound conversation message (broadcast sends live on Recipient)."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    direction: Mapped[str] = mapped_column(String(8))
    wamid: Mapped[str | None] = mapped_column(String(128), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    broadcast_id: Mapped[str | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="SET NULL"), index=True
    )
    recipient_id: Mapped[int | None] = mapped_column(
        ForeignKey("recipients.id", ondelete="SET NULL")
    )
    sent_by: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(16))
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AgentDelivery(Base):
    """One inbound message handed to an agent, with its attempts."""

    __tablename__ = "agent_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING, index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Who did what, from where."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    broadcast_id: Mapped[str | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), index=True
    )
    actor: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
