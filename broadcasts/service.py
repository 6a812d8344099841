"""Broadcast operations shared by Slack, the CLI and jobs: create, find, and every transition."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from broadcasts import audit
from broadcasts.actors import Actor
from broadcasts.configs import get_config, validate_pacing
from broadcasts.enums import BroadcastStatus as S
from broadcasts.errors import IllegalTransition, NextStep, NotFoundError, ValidationFailed
from broadcasts.lifecycle import EDITABLE, Action, ensure_editable, next_status
from broadcasts.models import Broadcast, Template, WhatsAppConfig, utcnow
from broadcasts.recipient_status import skip_unsent
from broadcasts.templates import ensure_approved, find_template

MIN_ID_PREFIX = 4


def create_broadcast(
    session: Session,
    *,
    name: str,
    config_ref: str | int,
    template_ref: str | int,
    by: Actor,
    channel_id: str | None = None,
    batch_size: int | None = None,
    batch_pause_seconds: float | None = None,
    rate_mps: float | None = None,
    failure_threshold: float | None = None,
) -> Broadcast:
    """A draft broadcast; its agent is the configuration's primary agent at this moment."""
    name = clean_name(name)
    config = get_config(session, config_ref)
    if config.primary_agent is None:
        raise ValidationFailed(
            f"WhatsApp configuration '{config.name}' has no primary agent, so nobody would answer "
            "replies; assign it a primary agent first.",
            field="config",
            next_step=NextStep.ASSIGN_AGENT,
            subject=config.name,
        )
    template = find_template(session, config, template_ref)
    ensure_approved(template)
    validate_pacing(
        throughput_mps=rate_mps, batch_size=batch_size, batch_pause_seconds=batch_pause_seconds
    )
    check_rate(config, rate_mps)
    _validate_threshold(failure_threshold)
    broadcast = Broadcast(
        name=name,
        config=config,
        template=template,
        agent=config.primary_agent,
        status=S.DRAFT,
        created_by=by.id,
        created_via=by.via,
        channel_id=channel_id,
        batch_size=batch_size,
        batch_pause_seconds=batch_pause_seconds,
        rate_mps=rate_mps,
        failure_threshold=failure_threshold,
    )
    session.add(broadcast)
    session.flush()
    audit.record(
        session,
        "broadcast.create",
        actor=by.id,
        via=by.via,
        broadcast_id=broadcast.id,
        name=name,
        template=template.name,
        agent=config.primary_agent.name,
    )
    return broadcast


def clean_name(name: str) -> str:
    """A broadcast name with its whitespace collapsed, or ValidationFailed saying what is wrong."""
    name = " ".join(name.split())
    if not name:
        raise ValidationFailed("A broadcast needs a name.", field="name")
    if len(name) > 200:
        raise ValidationFailed("A broadcast name is at most 200 characters.", field="name")
    return name


def check_rate(config: WhatsAppConfig, rate_mps: float | None) -> None:
    """A broadcast's own rate may slow it down, never ask for more than its number's throughput
    (sending clamps to the throughput anyway: this says so instead of silently ignoring it)."""
    if rate_mps is not None and rate_mps > config.throughput_mps:
        shown = f"{int(rate_mps):,}" if float(rate_mps).is_integer() else f"{rate_mps:,.1f}"
        raise ValidationFailed(
            f"{shown} messages/s is above the number's throughput ({config.throughput_mps}/s).",
            field="rate",
        )


def check_recipients_editable(broadcast: Broadcast) -> None:
    """Recipients can be added or removed only before sending starts (draft or scheduled)."""
    if broadcast.status not in EDITABLE:
        raise ValidationFailed(
            f"Broadcast '{broadcast.name}' is {broadcast.status}; recipients can no longer change."
        )


def _validate_threshold(value: float | None) -> None:
    if value is not None and not 0 < value <= 1:
        raise ValidationFailed(
            "The failure threshold is a share of a batch between 0 and 1 (e.g. 0.5).",
            field="failure_threshold",
        )


def discard_unposted_draft(session: Session, broadcast_id: str) -> None:
    """Remove a draft whose card could not be posted and that holds no recipients (the CLI could
    have added some meanwhile: that draft is kept, recipients have no foreign key to cascade)."""
    draft = session.get(Broadcast, broadcast_id)
    if (
        draft is not None
        and draft.status == S.DRAFT
        and draft.card_message_id is None
        and not draft.total_count
    ):
        session.delete(draft)


def get_broadcast(session: Session, ref: str) -> Broadcast:
    """A broadcast by id, by a unique id prefix (4+ characters) or by its exact name."""
    ref = ref.strip()
    if not ref:
        raise NotFoundError("Say which broadcast: its id or its name.")
    found = session.get(Broadcast, ref)
    if found is not None:
        return found
    matches: list[Broadcast] = []
    if len(ref) >= MIN_ID_PREFIX:
        matches = list(
            session.scalars(select(Broadcast).where(Broadcast.id.startswith(ref)).limit(2))
        )
    if not matches:
        matches = list(
            session.scalars(
                select(Broadcast)
                .where(func.lower(Broadcast.name) == ref.lower())
                .order_by(Broadcast.created_at.desc())
                .limit(2)
            )
        )
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise NotFoundError(f"'{ref}' matches several broadcasts; use the id.")
    raise NotFoundError(f"No broadcast '{ref}'.", next_step=NextStep.LIST_BROADCASTS)


def list_broadcasts(
    session: Session, *, status: str | None = None, limit: int = 50, search: str = ""
) -> list[Broadcast]:
    query = select(Broadcast)
    if status:
        try:
            query = query.where(Broadcast.status == S(status))
        except ValueError:
            allowed = ", ".join(s.value for s in S)
            raise ValidationFailed(f"Unknown status '{status}' (one of {allowed}).") from None
    if search:
        like = f"%{search.strip().lower()}%"
        query = query.where(
            or_(func.lower(Broadcast.name).like(like), Broadcast.id.startswith(search))
        )
    return list(session.scalars(query.order_by(Broadcast.created_at.desc()).limit(limit)))


def _transition(
    session: Session,
    broadcast: Broadcast,
    action: Action,
    *,
    by: Actor,
    values: dict[str, Any] | None = None,
    **detail: Any,
) -> Broadcast:
    """Move to the next status with a compare-and-set, so racing actors cannot both win."""
    current = broadcast.status
    target = next_status(broadcast.name, current, action)
    changes: dict[str, Any] = {
        "status": target,
        "version": Broadcast.version + 1,
        "updated_at": utcnow(),
    }
    changes.update(values or {})
    result = session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast.id, Broadcast.status == current)
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    session.refresh(broadcast)
    if not result.rowcount:  # type: ignore[attr-defined]
        # Someone else moved it first: explain against the status it has now.
        next_status(broadcast.name, broadcast.status, action)
        raise IllegalTransition(f"Broadcast '{broadcast.name}' changed meanwhile; try again.")
    audit.record(
        session,
        f"broadcast.{action.value}",
        actor=by.id,
        via=by.via,
        broadcast_id=broadcast.id,
        **{"from": current, "to": target.value, **detail},
    )
    return broadcast


def check_startable(session: Session, broadcast: Broadcast) -> None:
    """Refuse to start with a reason: template no longer approved, no recipients, no agent."""
    template = session.get(Template, broadcast.template_id)
    assert template is not None
    ensure_approved(template)
    if broadcast.total_count - broadcast.skipped_count <= 0:
        raise ValidationFailed(
            f"Broadcast '{broadcast.name}' has no recipients yet; upload a CSV or add contacts.",
            field="recipients",
        )
    config = session.get(WhatsAppConfig, broadcast.config_id)
    assert config is not None
    if config.primary_agent_id is None:
        raise ValidationFailed(
            f"WhatsApp configuration '{config.name}' has no primary agent; "
            "assign one before sending.",
            field="config",
            next_step=NextStep.ASSIGN_AGENT,
            subject=config.name,
        )


def start_broadcast(session: Session, ref: str, *, by: Actor) -> Broadcast:
    broadcast = get_broadcast(session, ref)
    next_status(broadcast.name, broadcast.status, Action.START)
    check_startable(session, broadcast)
    now = utcnow()
    return _transition(
        session,
        broadcast,
        Action.START,
        by=by,
        values={
            "started_at": now,
            "heartbeat_at": now,
            "next_batch_at": now,
            "status_reason": None,
        },
    )


def schedule_broadcast(
    session: Session, ref: str, at: datetime, *, by: Actor, now: datetime | None = None
) -> Broadcast:
    if at.tzinfo is None:
        raise ValidationFailed(
            "A schedule needs a timezone (e.g. 2026-12-20T10:00:00+01:00).", field="at"
        )
    now = now or utcnow()
    if at <= now:
        raise ValidationFailed(
            f"{at.isoformat()} is in the past (now is {now.replace(microsecond=0).isoformat()}); "
            "pick a later time.",
            field="at",
        )
    if at > now + timedelta(days=365):
        raise ValidationFailed("A schedule can be at most a year ahead.", field="at")
    broadcast = get_broadcast(session, ref)
    next_status(broadcast.name, broadcast.status, Action.SCHEDULE)
    check_startable(session, broadcast)
    return _transition(
        session, broadcast, Action.SCHEDULE, by=by, values={"scheduled_at": at}, at=at.isoformat()
    )


def unschedule_broadcast(session: Session, ref: str, *, by: Actor) -> Broadcast:
    broadcast = get_broadcast(session, ref)
    return _transition(session, broadcast, Action.UNSCHEDULE, by=by, values={"scheduled_at": None})


def pause_broadcast(
    session: Session, ref: str, *, by: Actor, reason: str | None = None
) -> Broadcast:
    broadcast = get_broadcast(session, ref)
    return _transition(
        session,
        broadcast,
        Action.PAUSE,
        by=by,
        values={"paused_at": utcnow(), "status_reason": reason},
        reason=reason,
    )


def resume_broadcast(session: Session, ref: str, *, by: Actor) -> Broadcast:
    broadcast = get_broadcast(session, ref)
    next_status(broadcast.name, broadcast.status, Action.RESUME)
    template = session.get(Template, broadcast.template_id)
    assert template is not None
    ensure_approved(template)
    now = utcnow()
    return _transition(
        session,
        broadcast,
        Action.RESUME,
        by=by,
        values={
            "paused_at": None,
            "status_reason": None,
            "heartbeat_at": now,
            "next_batch_at": now,
        },
    )


def cancel_broadcast(session: Session, ref: str, *, by: Actor) -> tuple[Broadcast, int]:
    """Cancel; recipients not yet attempted become `skipped`. Returns the broadcast and count."""
    broadcast = get_broadcast(session, ref)
    _transition(session, broadcast, Action.CANCEL, by=by, values={"finished_at": utcnow()})
    skipped = skip_unsent(session, broadcast.id, reason="broadcast cancelled")
    session.refresh(broadcast)
    return broadcast, skipped


def complete_broadcast(session: Session, broadcast: Broadcast) -> Broadcast:
    return _transition(
        session, broadcast, Action.COMPLETE, by=Actor.system(), values={"finished_at": utcnow()}
    )


def fail_broadcast(session: Session, broadcast: Broadcast, *, reason: str) -> Broadcast:
    return _transition(
        session,
        broadcast,
        Action.FAIL,
        by=Actor.system(),
        values={"finished_at": utcnow(), "status_reason": reason},
        reason=reason,
    )


def stop_for_error(session: Session, broadcast: Broadcast, reason: str, *, fail: bool) -> S | None:
    """Stop a sending broadcast the system found unable to go on; returns the status it stopped
    in (failed or paused), or None when its status changed meanwhile (a user paused or cancelled
    it first)."""
    try:
        if fail:
            fail_broadcast(session, broadcast, reason=reason)
            return S.FAILED
        pause_broadcast(session, broadcast.id, by=Actor.system(), reason=reason)
        return S.PAUSED
    except IllegalTransition:
        return None


def update_pacing(
    session: Session,
    ref: str,
    *,
    by: Actor,
    batch_size: int | None = None,
    batch_pause_seconds: float | None = None,
    rate_mps: float | None = None,
    failure_threshold: float | None = None,
) -> Broadcast:
    broadcast = get_broadcast(session, ref)
    ensure_editable(broadcast.name, broadcast.status)
    validate_pacing(
        throughput_mps=rate_mps, batch_size=batch_size, batch_pause_seconds=batch_pause_seconds
    )
    _validate_threshold(failure_threshold)
    for key, value in (
        ("batch_size", batch_size),
        ("batch_pause_seconds", batch_pause_seconds),
        ("rate_mps", rate_mps),
        ("failure_threshold", failure_threshold),
    ):
        if value is not None:
            setattr(broadcast, key, value)
    audit.record(
        session,
        "broadcast.pacing",
        actor=by.id,
        via=by.via,
        broadcast_id=broadcast.id,
        batch_size=batch_size,
        batch_pause_seconds=batch_pause_seconds,
        rate_mps=rate_mps,
        failure_threshold=failure_threshold,
    )
    return broadcast


def effective_pacing(broadcast: Broadcast) -> tuple[int, float, float]:
    """(batch size, pause between batches in s, rate in messages/s) after overrides."""
    config = broadcast.config
    rate = broadcast.rate_mps or config.throughput_mps * (1 - config.headroom)
    return (
        broadcast.batch_size or config.batch_size,
        config.batch_pause_seconds
        if broadcast.batch_pause_seconds is None
        else broadcast.batch_pause_seconds,
        min(rate, float(config.throughput_mps)),
    )
