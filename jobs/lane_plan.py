"""What a sending lane works from: the broadcast's plan, read at the start of each run, and the
number of lanes a broadcast gets."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from broadcasts import service
from broadcasts.enums import BroadcastStatus
from broadcasts.models import Broadcast
from jobs.settings import Settings
from jobs.whatsapp_targets import spec_for, target_for
from kapso.client import ApiTarget
from kapso.templates import TemplateSpec

DEFAULT_FAILURE_THRESHOLD = 0.5


@dataclass(frozen=True)
class Plan:
    broadcast_id: str
    name: str
    phone_number_id: str
    target: ApiTarget
    spec: TemplateSpec
    batch_size: int
    pause_seconds: float
    rate: float
    failure_threshold: float
    lanes: int


def lanes_for(pause_seconds: float, lanes_setting: int) -> int:
    """Batches separated by a pause go one after another; without a pause, lanes run in parallel."""
    return 1 if pause_seconds > 0 else max(1, lanes_setting)


def lane_count(broadcast: Broadcast, settings: Settings) -> int:
    """How many lanes send this broadcast (start, resume, revival and hand-over all ask here)."""
    _, pause, _ = service.effective_pacing(broadcast)
    return lanes_for(pause, settings.send_lanes)


def status_of(session: Session, broadcast_id: str) -> str | None:
    broadcast = session.get(Broadcast, broadcast_id)
    return None if broadcast is None else str(broadcast.status)


def load_plan(session: Session, broadcast_id: str, settings: Settings) -> Plan | None:
    """The plan of a broadcast that is sending; None when it is not (or no longer exists)."""
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None or broadcast.status != BroadcastStatus.SENDING:
        return None
    batch_size, pause, rate = service.effective_pacing(broadcast)
    return Plan(
        broadcast_id=broadcast_id,
        name=broadcast.name,
        phone_number_id=broadcast.config.phone_number_id,
        target=target_for(broadcast.config),
        spec=spec_for(broadcast.template),
        batch_size=batch_size,
        pause_seconds=pause,
        rate=rate,
        failure_threshold=broadcast.failure_threshold or DEFAULT_FAILURE_THRESHOLD,
        lanes=lanes_for(pause, settings.send_lanes),
    )
