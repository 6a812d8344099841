"""HTTP route for Slack: events, commands, interactivity and options at /slack/events."""

from __future__ import annotations

from starlette.routing import BaseRoute

from jobs.runtime import Runtime


def routes(runtime: Runtime) -> list[BaseRoute]:
    return []
