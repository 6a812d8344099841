"""The one backoff rule: ceilings grow by `factor` per attempt, waits drawn from the upper half."""

from __future__ import annotations

from broadcasts.backoff import backoff_seconds


def test_waits_grow_by_the_factor_and_stop_at_the_cap() -> None:
    for _ in range(200):
        assert 1.0 <= backoff_seconds(1, cap=300.0) <= 2.0
        assert 4.0 <= backoff_seconds(3, cap=300.0) <= 8.0
        assert 32.0 <= backoff_seconds(3, base=4.0, factor=4.0, cap=3600.0) <= 64.0
        assert 1800.0 <= backoff_seconds(9, base=4.0, factor=4.0, cap=3600.0) <= 3600.0
