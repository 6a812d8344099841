"""How long sending takes at a given pace: for the Send confirmation, the ETA and comparisons."""

from __future__ import annotations

import math

# The seed's pacing: "batches of 500, 10-second delay between batches, WhatsApp's 50 messages/s".
# A new configuration starts from these; its rate is the number's own throughput level when
# WhatsApp tells it, else SEED_RATE_MPS.
SEED_BATCH_SIZE = 500
SEED_BATCH_PAUSE_SECONDS = 10.0
SEED_RATE_MPS = 50


def estimate_seconds(
    recipients: int, *, batch_size: int, pause_seconds: float, rate: float
) -> float:
    """Time to send `recipients` messages: batches at `rate`, with a pause between batches."""
    if recipients <= 0:
        return 0.0
    batches = math.ceil(recipients / max(batch_size, 1))
    return recipients / max(rate, 0.001) + (batches - 1) * pause_seconds


def effective_rate(*, batch_size: int, pause_seconds: float, rate: float) -> float:
    """Messages per second over a long broadcast, pauses included."""
    return batch_size / (batch_size / rate + pause_seconds)
