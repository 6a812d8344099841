"""HTTP route for Slack: events, commands, interactivity and options at /slack/events.

The Bolt app is sync; each request is dispatched in Starlette's thread pool so the event loop
keeps serving webhooks meanwhile.
"""

from __future__ import annotations

import logging
import threading

from slack_bolt import App, BoltRequest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from broadcasts.errors import SettingsError
from jobs.runtime import Runtime

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # Slack payloads are small; refuse anything absurd


class LazyBolt:
    """Builds the Bolt app on the first Slack request, so the server starts without Slack set up."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._app: App | None = None
        self._lock = threading.Lock()

    def get(self) -> App:
        with self._lock:
            if self._app is None:
                from bot.slack_app import build_app

                self._app = build_app(self.runtime)
            return self._app


def routes(runtime: Runtime) -> list[BaseRoute]:
    bolt = LazyBolt(runtime)

    async def slack_events(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return PlainTextResponse("payload too large", status_code=413)
        try:
            app = await run_in_threadpool(bolt.get)
        except SettingsError as exc:
            log.error("Slack request refused: %s", exc)
            return PlainTextResponse(str(exc), status_code=503)
        bolt_request = BoltRequest(
            body=body.decode("utf-8", errors="replace"),
            query=str(request.url.query),
            headers={k: v for k, v in request.headers.items()},
        )
        bolt_response = await run_in_threadpool(app.dispatch, bolt_request)
        return Response(
            status_code=bolt_response.status,
            content=bolt_response.body,
            headers=bolt_response.first_headers_without_set_cookie(),
        )

    return [Route("/slack/events", slack_events, methods=["POST"])]
