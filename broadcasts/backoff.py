"""Exponential backoff with jitter: how long to wait before trying something again."""

from __future__ import annotations

import random


def backoff_seconds(attempt: int, *, cap: float, base: float = 2.0, factor: float = 2.0) -> float:
    """About base, factor·base, factor²·base … seconds after attempt 1, 2, 3 …, capped at `cap`.

    The wait is drawn from the upper half of that ceiling: jitter spreads many retries out, and
    the lower bound keeps each wait growing, so a retry storm thins out instead of repeating."""
    ceiling = min(cap, base * factor ** max(attempt - 1, 0))
    return float(ceiling / 2 + random.uniform(0, ceiling / 2))
