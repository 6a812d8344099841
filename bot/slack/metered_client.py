"""A Slack WebClient that counts its failed calls (method, error) for /metrics."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from jobs.telemetry import Meter


class MeteredWebClient(WebClient):
    """Counts `SlackApiError`s by Slack's error code, and calls that never got an answer."""

    def __init__(self, *args: Any, meter: Meter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.meter = meter

    def api_call(self, api_method: str, **kwargs: Any) -> Any:
        try:
            return super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            self.meter.count("slack_api_errors", {"method": api_method, "error": str(error)})
            raise
        except OSError:  # URLError, timeouts, refused connections
            self.meter.count("slack_api_errors", {"method": api_method, "error": "connection"})
            raise
