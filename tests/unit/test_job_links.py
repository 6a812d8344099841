"""How jobs/ reaches the Slack adapter: slots the adapter fills at start-up, and the names and
keys that jobs and Redis entries of the previous release still carry after an upgrade."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from rq.utils import import_attribute

from bot.slack import job_handlers
from jobs import broadcast_events, keys
from jobs.handlers import Handlers, MissingHandler, Slot, dotted_name

VALID_JOB_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def module_level_job(*args: Any) -> None:
    """A stand-in handler RQ could import."""


def test_the_slack_adapter_fills_every_slot() -> None:
    handlers = Handlers()
    job_handlers.register(handlers)
    handlers.check_complete()
    assert {slot: dotted_name(handlers.get(slot)) for slot in Slot} == {
        # The names jobs queued before handlers were registered carry: they still run.
        Slot.BROADCAST_EVENT: "bot.slack.notifications.handle_event",
        Slot.SLACK_AGENT_DELIVERY: "bot.slack.agent_threads.deliver",
    }


def test_an_empty_slot_is_named_when_used_or_checked() -> None:
    handlers = Handlers()
    with pytest.raises(MissingHandler, match="broadcast-event"):
        handlers.get(Slot.BROADCAST_EVENT)
    handlers.register(Slot.BROADCAST_EVENT, module_level_job)
    with pytest.raises(MissingHandler, match="slack-agent-delivery") as caught:
        handlers.check_complete()
    assert "broadcast-event" not in str(caught.value)


def test_a_handler_no_worker_could_import_is_refused() -> None:
    def local_job() -> None:
        pass

    handlers = Handlers()
    with pytest.raises(MissingHandler, match="not a module-level function"):
        handlers.register(Slot.BROADCAST_EVENT, local_job)
    with pytest.raises(MissingHandler, match="not a module-level function"):
        handlers.register(Slot.BROADCAST_EVENT, lambda: None)


def test_a_slot_keeps_its_handler() -> None:
    handlers = Handlers()
    handlers.register(Slot.BROADCAST_EVENT, module_level_job)
    handlers.register(Slot.BROADCAST_EVENT, module_level_job)  # start-up twice: harmless
    with pytest.raises(MissingHandler, match="already handled by"):
        handlers.register(Slot.BROADCAST_EVENT, test_a_slot_keeps_its_handler)


def test_a_worker_started_without_the_adapter_refuses_to_start() -> None:
    script = "from jobs.runtime import Runtime; from jobs.worker import run; run(Runtime())"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0
    assert "MissingHandler: no handler registered for broadcast-event" in done.stderr


@pytest.mark.parametrize(
    "name",
    [
        "bot.slack.notifications.handle_event",
        "bot.slack.notifications.refresh_card",
        "bot.slack.card_messages.post_note_job",
        "bot.slack.files.ingest_file",
        "bot.slack.reports.post_report",
        "bot.slack.templates_sync.sync_and_tell",
        "bot.slack.agent_threads.deliver",
        "jobs.agents.deliver",
        "jobs.inbox.process",
        "jobs.sender.run_lane",
    ],
)
def test_jobs_queued_by_the_previous_release_still_find_their_function(name: str) -> None:
    assert callable(import_attribute(name))


def test_every_former_job_name_runs_the_function_that_moved() -> None:
    handlers = Handlers()
    job_handlers.register(handlers)
    for former, func in job_handlers.FORMER_NAMES.items():
        assert handlers.former(former) is func
        assert import_attribute(dotted_name(func)) is func  # registered where RQ finds it
        with pytest.raises((ImportError, AttributeError, ValueError)):
            import_attribute(former)  # really moved: only the registration finds it


def test_an_unknown_event_kind_is_refused_before_anything_is_queued() -> None:
    with pytest.raises(ValueError, match="unknown broadcast event 'import_done'"):
        broadcast_events.publish(None, "b-1", "import_done")  # type: ignore[arg-type]


def test_job_ids_are_valid_rq_ids_whatever_the_input() -> None:
    ids = [
        keys.send_job("6f1c:b/2", 3),
        keys.agent_retry_job(7, 2),
        keys.slack_agent_retry_job(7, 2),
        keys.slack_file_job("F0:1 2"),
        keys.template_sync_job("U0ANA@x"),
    ]
    assert all(VALID_JOB_ID.match(job_id) for job_id in ids)
    assert len(set(ids)) == len(ids)


def test_redis_keys_keep_the_text_running_processes_use() -> None:
    # Processes of the previous release share these keys during an upgrade: a new spelling
    # would let two processes edit one card at once or take one lane twice.
    assert keys.lane_lock("b1", 0) == "bb:lane:b1:0"
    assert keys.rate_limiter("n1") == ["bb:rate:n1:tat", "bb:rate:n1:penalty"]
    assert keys.MAINTENANCE_LOCK == "bb:maintenance"
    assert keys.INBOX_KICK == "bb:inbox:kick"
    assert keys.inbox_requeued(5) == "bb:inbox:requeued:5"
    assert keys.agent_thread_lock("c1") == "bb:agent-thread:c1"
    assert keys.slack_message_seen("C1", "1.2") == "bb:slack-msg:C1:1.2"
    assert keys.slack_event_seen("Ev1") == "bb:slack-event:Ev1"
    assert keys.slack_file_seen("F1") == "bb:slack:file:F1"
    assert keys.card_budget("b1") == "bb:slack:card:b1"
    assert keys.workspace_edits(3) == "bb:slack:updates:3"
    assert keys.card_dirty("b1") == "bb:slack:dirty:b1"
    assert keys.card_shown("b1") == "bb:slack:shown:b1"
    assert keys.card_catch_up("b1") == "bb:slack:trail:b1"
    assert keys.slack_once("m") == "bb:slack:once:m"
    assert keys.telemetry_counter("x") == "bb:tm:c:x"
    assert keys.telemetry_sent_bucket("n1", 9) == "bb:tm:sent:n1:9"
    assert keys.TELEMETRY_RATE_NUMBERS == "bb:tm:rate_numbers"
