"""Broadcast control shared by Slack and the CLI: the service transition, then the queue work.

Each function takes a ref (id, id prefix or name) and who acts, changes the database first (the
source of truth) and only then enqueues work or publishes an event, so a lost Redis message is
repaired by the maintenance loop rather than lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from broadcasts import audit, service
from broadcasts.actors import Actor
from broadcasts.callback import encode
from broadcasts.db import retrying_transaction, transaction
from broadcasts.errors import ValidationFailed
from broadcasts.imports.phones import PHONE_REASONS, normalise_phone
from broadcasts.models import Broadcast, utcnow
from broadcasts.replies import record_test_send
from broadcasts.templates import ensure_approved
from jobs import broadcast_events
from jobs.broadcast_events import EventKind
from jobs.lane_plan import lane_count
from jobs.limiter import reserve_sync
from jobs.runtime import Runtime
from jobs.sender import enqueue_lanes
from jobs.whatsapp_targets import spec_for, target_for
from kapso.client import WhatsAppClient
from kapso.errors import WhatsAppError
from kapso.templates import MissingParameter, build_components

log = logging.getLogger(__name__)
T = TypeVar("T")


def start(runtime: Runtime, ref: str, *, by: Actor) -> Broadcast:
    with transaction(runtime.sessions) as session:
        broadcast = service.start_broadcast(session, ref, by=by)
        lanes = lane_count(broadcast, runtime.settings)
        recipients = broadcast.pending_count  # the note says this even if it is shown late
    enqueue_lanes(runtime, broadcast.id, lanes)
    broadcast_events.publish(
        runtime.redis, broadcast.id, EventKind.STARTED, by=by.id, via=by.via, recipients=recipients
    )
    return broadcast


def _while_sending(runtime: Runtime, fn: Callable[[Session], T]) -> T:
    """A control change in its own transaction, again if the database picked it as the victim
    of a deadlock: pause and cancel race the lanes' writes to the same rows."""
    return retrying_transaction(runtime.sessions, fn, attempts=5)


def pause(runtime: Runtime, ref: str, *, by: Actor, reason: str | None = None) -> Broadcast:
    broadcast = _while_sending(
        runtime, lambda session: service.pause_broadcast(session, ref, by=by, reason=reason)
    )
    broadcast_events.publish(
        runtime.redis, broadcast.id, EventKind.PAUSED, by=by.id, via=by.via, reason=reason
    )
    return broadcast


def resume(runtime: Runtime, ref: str, *, by: Actor) -> Broadcast:
    with transaction(runtime.sessions) as session:
        broadcast = service.resume_broadcast(session, ref, by=by)
        lanes = lane_count(broadcast, runtime.settings)
    enqueue_lanes(runtime, broadcast.id, lanes)
    broadcast_events.publish(runtime.redis, broadcast.id, EventKind.RESUMED, by=by.id, via=by.via)
    return broadcast


def cancel(runtime: Runtime, ref: str, *, by: Actor) -> tuple[Broadcast, int]:
    broadcast, skipped = _while_sending(
        runtime, lambda session: service.cancel_broadcast(session, ref, by=by)
    )
    broadcast_events.publish(
        runtime.redis, broadcast.id, EventKind.CANCELLED, by=by.id, via=by.via, skipped=skipped
    )
    return broadcast, skipped


def schedule(runtime: Runtime, ref: str, at: datetime, *, by: Actor) -> Broadcast:
    with transaction(runtime.sessions) as session:
        broadcast = service.schedule_broadcast(session, ref, at, by=by)
    broadcast_events.publish(
        runtime.redis, broadcast.id, EventKind.SCHEDULED, by=by.id, via=by.via, at=at.isoformat()
    )
    return broadcast


def unschedule(runtime: Runtime, ref: str, *, by: Actor) -> Broadcast:
    with transaction(runtime.sessions) as session:
        broadcast = service.unschedule_broadcast(session, ref, by=by)
    broadcast_events.publish(
        runtime.redis, broadcast.id, EventKind.UNSCHEDULED, by=by.id, via=by.via
    )
    return broadcast


def _wait_for_slot(runtime: Runtime, phone_number_id: str, rate: float) -> None:
    """Book one send slot on the number's limiter, so a test send never pushes a running
    broadcast on the same number over the rate."""
    while True:
        reservation = reserve_sync(runtime.redis, phone_number_id, rate)
        time.sleep(max(0.0, reservation.wait_seconds - (0 if reservation.granted else 0.5)))
        if reservation.granted:
            return


def test_number(runtime: Runtime, phone: str) -> str:
    """The test number in E.164, or a ValidationFailed saying why it cannot be used."""
    number, reason = normalise_phone(phone, runtime.settings.phone_default_region)
    if number is None:
        raise ValidationFailed(
            f"Test number '{phone}' is not usable: {PHONE_REASONS.get(reason, reason)}.",
            field="phone",
        )
    return number


def check_test_send(runtime: Runtime, ref: str, *, phone: str, params: dict[str, str]) -> str:
    """What a test send can be refused for without asking WhatsApp (the number, the template's
    state, its parameters): Slack shows it on the modal's field, the CLI before any call.
    Returns the number in E.164."""
    number = test_number(runtime, phone)
    with transaction(runtime.sessions) as session:
        template = service.get_broadcast(session, ref).template
        ensure_approved(template)
        spec = spec_for(template)
    try:
        build_components(spec, params)
    except MissingParameter as exc:
        raise ValidationFailed(
            f"Test send refused. {str(exc).capitalize()}.", field="params"
        ) from None
    return number


def test_send(runtime: Runtime, ref: str, *, phone: str, params: dict[str, str], by: Actor) -> str:
    """Send the broadcast's template to one number, outside its metrics; returns the wamid."""
    number = check_test_send(runtime, ref, phone=phone, params=params)
    with transaction(runtime.sessions) as session:
        broadcast = service.get_broadcast(session, ref)
        target = target_for(broadcast.config)
        spec = spec_for(broadcast.template)
        broadcast_id = broadcast.id
        rate = float(broadcast.config.throughput_mps)
    _wait_for_slot(runtime, target.phone_number_id, rate)

    async def send() -> str:
        async with WhatsAppClient(max_in_flight=1) as client:
            result = await client.send_template(
                target,
                to=number,
                template=spec,
                params=params,
                callback_data=encode(broadcast_id, None),
            )
            return result.wamid

    try:
        wamid = asyncio.run(send())
    except WhatsAppError as exc:
        raise ValidationFailed(f"Test send refused. {exc}", field="params") from None
    with transaction(runtime.sessions) as session:
        record_test_send(
            session,
            broadcast_id=broadcast_id,
            phone=number,
            wamid=wamid,
            params=params,
            sent_by=by.id,
            at=utcnow(),
        )
        audit.record(
            session,
            "broadcast.test_send",
            actor=by.id,
            via=by.via,
            broadcast_id=broadcast_id,
            to=number,
            wamid=wamid,
        )
    return wamid
