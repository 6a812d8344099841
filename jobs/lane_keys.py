"""The Redis names of a broadcast's sending lanes: the lock a running lane holds and the RQ id of
its job (deterministic, so queueing a lane twice only finds nothing to do)."""

from __future__ import annotations

from jobs.queues import job_id


def lane_lock_key(broadcast_id: str, lane: int) -> str:
    return f"bb:lane:{broadcast_id}:{lane}"


def send_job_id(broadcast_id: str, lane: int) -> str:
    return job_id("send", broadcast_id, lane)
