"""HTTP routes for WhatsApp webhooks (Meta and Kapso formats)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from jobs.runtime import Runtime


def routes(runtime: Runtime) -> list[BaseRoute]:
    return []
