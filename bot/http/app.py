"""The production HTTP app (ASGI): Slack at /slack/events, WhatsApp webhooks, health, metrics."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from bot.http import metrics, slack_routes, webhook_routes
from bot.ops.logs import ensure_configured
from bot.slack import job_handlers
from jobs.runtime import Runtime


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def create_app(runtime: Runtime | None = None) -> ASGIApp:
    """Build the app; routes come from one module per area, webhook POSTs in front of them."""
    runtime = runtime or Runtime()
    ensure_configured(runtime.settings)  # `web --workers N` starts fresh processes
    job_handlers.register()
    webhooks = webhook_routes.WebhookEndpoints(runtime)
    posts = webhook_routes.posts(webhooks)
    routes: list[BaseRoute] = [Route("/healthz", healthz)]
    routes += webhook_routes.routes(webhooks, posts)
    routes += slack_routes.routes(runtime)
    app = Starlette(routes=routes)
    metrics.install(app, runtime)
    app.state.runtime = runtime
    return webhook_routes.WebhookIntake(app, posts)
