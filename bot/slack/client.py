"""The Slack Web API client, built from settings (SLACK_API_URL, SLACK_BOT_TOKEN) in one place."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.slack.metered_client import MeteredWebClient
from jobs.settings import Settings
from jobs.telemetry import meter_for

RATE_LIMIT_RETRIES = 5


def make_client(settings: Settings, *, retry_rate_limits: bool = True) -> WebClient:
    """A WebClient that retries 429 answers after their Retry-After (unless the caller
    schedules its own retry instead of sleeping, as card edits do)."""
    token = settings.require("slack_bot_token", "the Slack bot needs its bot token (xoxb-…)")
    base = (
        settings.slack_api_url
        if settings.slack_api_url.endswith("/")
        else settings.slack_api_url + "/"
    )
    meter = meter_for(settings.redis_url)
    client = MeteredWebClient(token=token, base_url=base, timeout=30, meter=meter)
    if retry_rate_limits:
        client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES))
    return client
