"""The control benchmark's arithmetic: what counts as sent after a pause, late, or a burst."""

from __future__ import annotations

import math
from typing import Any

from benchmarks.bench_control import (
    card_figures,
    percentile,
    reply_latencies,
    sent_after,
    status_latencies,
)


def message(broadcast: str, at: float, recipient: int = 1) -> dict[str, Any]:
    return {"callback_data": f"bb1:{broadcast}:{recipient}", "time": at, "wamid": f"w{at}"}


def status(wamid: str, state: str, at: float) -> dict[str, Any]:
    return {"kind": "status", "id": wamid, "status": state, "emitted_at": at, "acked_at": at}


def reply(message_id: str, at: float) -> dict[str, Any]:
    return {"kind": "message", "id": message_id, "status": None, "emitted_at": at}


def test_sent_after_counts_only_that_broadcasts_messages_accepted_after_the_moment() -> None:
    messages = [
        message("A", 9.9),
        message("A", 10.0),  # at the very moment: not later
        message("A", 10.4),
        message("A", 12.5),
        message("B", 11.0),
        message("A", 30.0),  # after `until` (resumed)
        {"callback_data": None, "time": 11.0},  # a test send
    ]
    assert sent_after(messages, "A", 10.0, until=20.0) == (2, 2.5)
    assert sent_after(messages, "B", 10.0) == (1, 1.0)
    assert sent_after(messages, "C", 10.0) == (0, 0.0)


def test_status_latency_runs_from_the_first_post_of_a_status_that_implies_the_field() -> None:
    hooks = [
        status("w1", "sent", 100.0),  # not measured: the row shows sent from the send itself
        status("w1", "delivered", 101.0),
        status("w1", "delivered", 101.5),  # a duplicate: the first post counts
        status("w2", "read", 102.0),  # read before delivered: it implies delivered
        status("w2", "delivered", 103.0),
        status("w3", "failed", 104.0),
        status("w4", "delivered", 150.0),  # after the window
        status("other", "delivered", 101.0),  # another broadcast's message
    ]
    seen = {
        ("w1", "delivered"): 101.75,
        ("w2", "delivered"): 102.5,
        ("w2", "read"): 102.5,
        ("w4", "delivered"): 150.1,
    }
    latencies = status_latencies(hooks, {"w1", "w2", "w3", "w4"}, seen, (100.0, 120.0))
    assert sorted(latencies) == [0.5, 0.5, 0.75, math.inf]  # w3's failure was never shown


def test_reply_latency_counts_replies_posted_in_the_window_and_never_received_ones() -> None:
    hooks = [reply("m1", 10.0), reply("m1", 12.0), reply("m2", 11.0), reply("m3", 99.0)]
    latencies = reply_latencies(hooks, {"m1": 10.25, "m3": 99.5}, (0.0, 50.0))
    assert sorted(latencies) == [0.25, math.inf]


def test_percentile_is_infinite_when_its_rank_falls_on_something_never_seen() -> None:
    values = [float(v) for v in range(1, 20)] + [math.inf]
    assert percentile(values, 0.5) == 10.0
    assert percentile(values, 0.95) == 19.0
    assert math.isinf(percentile([*values, math.inf], 0.95))
    assert math.isnan(percentile([], 0.5))


def test_card_figures_find_bursts_gaps_and_identical_edits_on_that_card_only() -> None:
    updates = [
        (100.0, "C1", "1.1", "x"),
        (100.4, "C1", "1.1", "x"),  # same content again, 0.4 s later: a burst
        (103.0, "C1", "1.1", "y"),
        (103.5, "C2", "9.9", "y"),  # another card
        (106.0, "C1", "1.1", "z"),
        (130.0, "C1", "1.1", "z"),  # outside the window
    ]
    figures = card_figures(updates, "C1", "1.1", (100.0, 110.0))
    assert figures.updates == 4
    assert figures.per_second == 0.4
    assert figures.most_in_one_second == 2
    assert figures.longest_gap == 4.0  # 106 → the end of the window at 110
    assert figures.identical == 1
    quiet = card_figures([], "C1", "1.1", (0.0, 20.0))
    assert (quiet.updates, quiet.most_in_one_second, quiet.longest_gap) == (0, 0, 20.0)
