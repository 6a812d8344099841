"""The seed's metrics to the letter: response rate over total recipients, other rates by name."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from broadcasts.metrics import RATES, Counts, counts_of

AT = datetime(2024, 12, 20, 10, 0, tzinfo=UTC)


def test_response_rate_is_responded_over_total_recipients_even_when_cancelled() -> None:
    # The cancelled broadcast: 1,000 recipients, 500 sent before cancel, 158 responded.
    counts = Counts(total=1000, sent=500, delivered=480, read=300, responded=158, skipped=500)
    assert counts.response_rate == pytest.approx(0.158)
    assert counts.delivery_rate == pytest.approx(480 / 500)
    assert counts.read_rate == pytest.approx(300 / 480)
    assert counts.reply_rate_of_delivered == pytest.approx(158 / 480)


def test_rates_are_zero_without_a_divisor() -> None:
    assert Counts().rates() == {key: 0.0 for key, _, _ in RATES}
    assert Counts(total=3).delivery_rate == 0.0


def test_every_rate_is_named_with_what_it_divides_and_exported() -> None:
    assert [key for key, _, _ in RATES] == [
        "response_rate",
        "delivery_rate",
        "read_rate",
        "reply_rate_of_delivered",
    ]
    assert dict((k, m) for k, _, m in RATES)["response_rate"] == "responded ÷ total recipients"
    data = Counts(total=4, sent=4, delivered=2, read=1, responded=1, opted_out=1).as_dict()
    assert (data["response_rate"], data["delivery_rate"], data["read_rate"]) == (0.25, 0.5, 0.5)
    assert (data["reply_rate_of_delivered"], data["opted_out"]) == (0.5, 1)


def _recipient(**kw: object) -> SimpleNamespace:
    base: dict[str, object] = {
        "status": "read",
        "sent_at": AT,
        "delivered_at": AT,
        "read_at": AT,
        "responded_at": None,
        "opted_out_at": None,
    }
    return SimpleNamespace(**{**base, **kw})


def test_a_stop_reply_is_an_opt_out_not_a_response() -> None:
    stopped = counts_of(_recipient(opted_out_at=AT))  # type: ignore[arg-type]
    assert (stopped.opted_out, stopped.responded) == (1, 0)
    answered = counts_of(_recipient(responded_at=AT))  # type: ignore[arg-type]
    assert (answered.opted_out, answered.responded) == (0, 1)


def test_broadcasts_show_names_every_figure_and_what_each_rate_divides() -> None:
    from bot.cli.broadcasts import metrics_table

    counts = Counts(total=1000, sent=500, delivered=400, read=200, responded=100, opted_out=7)
    text = metrics_table(counts.as_dict())
    for line in (
        "Opted out (STOP replies)",
        "Response rate",
        "10.0% (responded ÷ total recipients)",
        "80.0% (delivered ÷ sent)",
        "50.0% (read ÷ delivered)",
        "25.0% (responded ÷ delivered)",
    ):
        assert line in text
