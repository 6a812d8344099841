"""A configuration's limits as WhatsApp reports them: the rate follows the level unless set."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from broadcasts import configs
from broadcasts.configs import Limits, record_limits, tier_limit
from broadcasts.pacing import SEED_BATCH_PAUSE_SECONDS, SEED_BATCH_SIZE, SEED_RATE_MPS
from tests.factories import OPERATOR, make_config


def test_a_new_configuration_starts_at_the_seeds_pacing(session: Session) -> None:
    config = make_config(session)
    assert (config.throughput_mps, config.batch_size, config.batch_pause_seconds) == (
        SEED_RATE_MPS,
        SEED_BATCH_SIZE,
        SEED_BATCH_PAUSE_SECONDS,
    )
    assert (SEED_RATE_MPS, SEED_BATCH_SIZE, SEED_BATCH_PAUSE_SECONDS) == (50, 500, 10.0)
    assert (config.throughput_level, config.messaging_limit) == (None, None)


def test_the_rate_follows_the_level_until_set_by_hand(session: Session) -> None:
    make_config(session)
    changes = record_limits(session, "main", Limits("STANDARD", 80, "TIER_250"))
    config = configs.get_config(session, "main")
    assert (config.throughput_mps, config.throughput_level, config.messaging_limit) == (
        80,
        "STANDARD",
        "TIER_250",
    )
    assert changes == [
        "throughput level unknown → STANDARD",
        "messaging limit unknown → TIER_250",
        "rate 50/s → 80/s",
    ]
    assert config.limits_checked_at is not None
    record_limits(session, "main", Limits("HIGH", 1000, "TIER_2K"))
    assert config.throughput_mps == 1000
    configs.set_pacing(session, "main", by=OPERATOR, throughput_mps=300)  # by hand: kept
    assert record_limits(session, "main", Limits("HIGH", 1000, "TIER_2K")) == []
    assert config.throughput_mps == 300
    # Never above what the number allows, even when set by hand.
    record_limits(session, "main", Limits("COEXISTENCE", 20, None))
    assert (config.throughput_mps, config.messaging_limit) == (20, "TIER_2K")


def test_an_unreported_level_changes_nothing(session: Session) -> None:
    make_config(session)
    assert record_limits(session, "main", Limits(None, None, None)) == []
    assert configs.get_config(session, "main").throughput_mps == SEED_RATE_MPS


@pytest.mark.parametrize(
    ("tier", "people"),
    [
        ("TIER_250", 250),
        ("TIER_2K", 2000),
        ("TIER_10K", 10_000),
        ("TIER_100K", 100_000),
        ("TIER_UNLIMITED", None),
        (None, None),
        ("SOMETHING", None),
    ],
)
def test_tier_limits_in_people_per_day(tier: str | None, people: int | None) -> None:
    assert tier_limit(tier) == people
