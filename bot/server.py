"""The production HTTP app (ASGI): Slack at /slack/events, WhatsApp webhooks, health, metrics."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from bot import job_handlers, metrics_http, slack_http, webhook_http
from bot.logs import ensure_configured
from jobs.runtime import Runtime


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def create_app(runtime: Runtime | None = None) -> ASGIApp:
    """Build the app; routes come from one module per area, webhook POSTs in front of them."""
    runtime = runtime or Runtime()
    ensure_configured(runtime.settings)  # `web --workers N` starts fresh processes
    job_handlers.register()
    webhooks = webhook_http.WebhookEndpoints(runtime)
    posts = webhook_http.posts(webhooks)
    routes: list[BaseRoute] = [Route("/healthz", healthz)]
    routes += webhook_http.routes(webhooks, posts)
    routes += slack_http.routes(runtime)
    app = Starlette(routes=routes)
    metrics_http.install(app, runtime)
    app.state.runtime = runtime
    return webhook_http.WebhookIntake(app, posts)
