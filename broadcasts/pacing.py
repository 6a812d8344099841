"""How long sending takes at a given pace: for the Send confirmation, the ETA and comparisons."""

from __future__ import annotations

import math


def estimate_seconds(
    recipients: int, *, batch_size: int, pause_seconds: float, rate: float
) -> float:
    """Time to send `recipients` messages: batches at `rate`, with a pause between batches."""
    if recipients <= 0:
        return 0.0
    batches = math.ceil(recipients / batch_size)
    return recipients / rate + (batches - 1) * pause_seconds


def effective_rate(*, batch_size: int, pause_seconds: float, rate: float) -> float:
    """Messages per second over a long broadcast, pauses included."""
    return batch_size / (batch_size / rate + pause_seconds)


def human_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
