"""Every Redis key and RQ job id the processes share, so two modules never spell one differently.

Keys are read by other processes (and by processes of the previous release during an upgrade),
so a key's text is part of the contract: change one only with a plan for the old one. Job ids
are deterministic so that queueing the same work twice finds the first job (RQ job ids take
letters, digits, '-' and '_' only; see jobs.queues.job_id).
"""

from __future__ import annotations

from jobs.queues import job_id

PREFIX = "bb:"

# --- sending -----------------------------------------------------------------------------------


def lane_lock(broadcast_id: str, lane: int) -> str:
    """Held by the process sending this lane of the broadcast."""
    return f"{PREFIX}lane:{broadcast_id}:{lane}"


def rate_limiter(phone_number_id: str) -> list[str]:
    """The rate limiter's state for one number: its next free slot, then its penalty."""
    return [f"{PREFIX}rate:{phone_number_id}:tat", f"{PREFIX}rate:{phone_number_id}:penalty"]


def send_job(broadcast_id: str, lane: int) -> str:
    return job_id("send", broadcast_id, lane)


# --- background upkeep -------------------------------------------------------------------------

MAINTENANCE_LOCK = f"{PREFIX}maintenance"  # held by the one process running the maintenance pass

# --- webhook inbox -----------------------------------------------------------------------------

INBOX_KICK = f"{PREFIX}inbox:kick"  # set while a job that takes whatever waits is queued


def inbox_requeued(event_id: int) -> str:
    """Set for a while after an inbox row is queued again, so it is not queued twice."""
    return f"{PREFIX}inbox:requeued:{event_id}"


# --- agents ------------------------------------------------------------------------------------


def agent_retry_job(delivery_id: int, attempts: int) -> str:
    return job_id("agent", delivery_id, attempts)


def slack_agent_retry_job(delivery_id: int, attempts: int) -> str:
    return job_id("slack-agent", delivery_id, attempts)


def agent_thread_lock(conversation_id: str) -> str:
    """Held while the Slack thread of a conversation is found or started (one per conversation)."""
    return f"{PREFIX}agent-thread:{conversation_id}"


def slack_message_seen(channel: str, ts: str) -> str:
    return f"{PREFIX}slack-msg:{channel}:{ts}"


def slack_event_seen(event_id: str) -> str:
    return f"{PREFIX}slack-event:{event_id}"


# --- Slack files, reports, templates -----------------------------------------------------------


def slack_file_seen(file_id: str) -> str:
    """Set when a file shared in a card's thread is first queued (Slack redelivers events)."""
    return f"{PREFIX}slack:file:{file_id}"


def slack_file_job(file_id: str) -> str:
    return job_id("slack-file", file_id)


def template_sync_job(user_id: str) -> str:
    return job_id("template-sync", user_id)


# --- the card-edit budget (bot.slack.edit_budget) ---------------------------------------------


def card_budget(broadcast_id: str) -> str:
    """Exists while this card may not be edited again."""
    return f"{PREFIX}slack:card:{broadcast_id}"


def workspace_edits(minute: int) -> str:
    """Card edits spent in this minute (Redis clock), across every card of the workspace."""
    return f"{PREFIX}slack:updates:{minute}"


def card_dirty(broadcast_id: str) -> str:
    """Set when the card has something new to show."""
    return f"{PREFIX}slack:dirty:{broadcast_id}"


def card_shown(broadcast_id: str) -> str:
    """The digest of what the card shows now."""
    return f"{PREFIX}slack:shown:{broadcast_id}"


def card_catch_up(broadcast_id: str) -> str:
    """Set while one catch-up edit of this card is scheduled."""
    return f"{PREFIX}slack:trail:{broadcast_id}"


def slack_once(name: str) -> str:
    """Set the first time a one-off Slack note (a milestone) is posted."""
    return f"{PREFIX}slack:once:{name}"


# --- telemetry (jobs.telemetry) ----------------------------------------------------------------

TELEMETRY_PREFIX = f"{PREFIX}tm:"
TELEMETRY_RATE_NUMBERS = f"{TELEMETRY_PREFIX}rate_numbers"  # numbers that sent recently


def telemetry_counter(name: str) -> str:
    return f"{TELEMETRY_PREFIX}c:{name}"


def telemetry_sent_bucket(phone_number_id: str, second: int) -> str:
    """Messages this number sent in this second (Redis clock)."""
    return f"{TELEMETRY_PREFIX}sent:{phone_number_id}:{second}"
