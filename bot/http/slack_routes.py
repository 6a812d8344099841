"""HTTP route for Slack: events, commands, interactivity and options at /slack/events.

The body is read within a limit and its signature checked here, before Bolt sees it: Bolt would
buffer any size, answer a malformed timestamp with a 500 and log a refused body in full. The Bolt
app is sync; each request is dispatched in Starlette's thread pool so the event loop keeps
serving webhooks meanwhile.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
import urllib.parse
from collections.abc import Sequence

from slack_bolt import App, BoltRequest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.http.bodies import BodyTooLarge, Disconnected, read_body, refused
from broadcasts.errors import SettingsError
from jobs.runtime import Runtime

log = logging.getLogger(__name__)

ROUTE = "/slack/events"
MAX_BODY_BYTES = 1024 * 1024  # Slack payloads are small; refuse anything absurd
MAX_AGE_SECONDS = 5 * 60  # Slack's own rule for replayed requests


class Refusal(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def verify(headers: dict[str, str], body: bytes, secret: str, now: float) -> None:
    """Raise Refusal unless `body` carries Slack's v0 signature made within five minutes."""
    stamp = headers.get("x-slack-request-timestamp", "").strip()
    signature = headers.get("x-slack-signature", "")
    if not stamp:
        raise Refusal(401, "no X-Slack-Request-Timestamp")
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise Refusal(400, "X-Slack-Request-Timestamp is not a number")
    if abs(now - int(stamp)) > MAX_AGE_SECONDS:
        raise Refusal(401, "stale X-Slack-Request-Timestamp")
    base = b"v0:" + stamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise Refusal(401, "bad or missing X-Slack-Signature")


def _is_ssl_check(body: bytes) -> bool:
    """Slack's `ssl_check=1` probe of a slash command URL (Bolt answers it before verifying)."""
    if b"ssl_check=1" not in body[:4096]:
        return False
    form = urllib.parse.parse_qs(body[:4096].decode("latin-1"))
    return form.get("ssl_check") == ["1"]


class LazyBolt:
    """Builds the Bolt app on the first Slack request, so the server starts without Slack set up."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._app: App | None = None
        self._lock = threading.Lock()

    def get(self) -> App:
        with self._lock:
            if self._app is None:
                from bot.slack.app import build_app

                self._app = build_app(self.runtime)
            return self._app


def _refuse(status: int, reason: str, size: int | None, client: str | None) -> Response:
    refused(ROUTE, reason, size, client)
    return JSONResponse({"ok": False, "error": reason}, status_code=status)


def routes(runtime: Runtime) -> list[BaseRoute]:
    bolt = LazyBolt(runtime)

    async def slack_events(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        client = request.client.host if request.client else None
        secret = runtime.settings.slack_signing_secret
        if not secret:
            log.error("Slack request refused: SLACK_SIGNING_SECRET is not set")
            return JSONResponse(
                {"ok": False, "error": "SLACK_SIGNING_SECRET is not configured"}, status_code=503
            )
        try:
            body = await read_body(request.receive, headers, MAX_BODY_BYTES)
        except BodyTooLarge as exc:
            return _refuse(413, f"body over {MAX_BODY_BYTES} bytes", exc.size, client)
        except Disconnected:
            return Response(status_code=400)
        if _is_ssl_check(body):  # Slack's unsigned certificate probe: answer it, act on nothing
            return Response(status_code=200)
        try:
            verify(headers, body, secret, time.time())
            text = body.decode("utf-8")
        except Refusal as exc:
            return _refuse(exc.status, exc.reason, len(body), client)
        except UnicodeDecodeError:
            return _refuse(400, "body is not UTF-8", len(body), client)
        try:
            app = await run_in_threadpool(bolt.get)
        except SettingsError as exc:
            log.error("Slack request refused: %s", exc)
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=503)
        try:
            bolt_headers: dict[str, str | Sequence[str]] = dict(headers)
            bolt_request = BoltRequest(
                body=text, query=str(request.url.query), headers=bolt_headers
            )
        except (ValueError, RecursionError) as exc:  # signed, yet not a payload Slack sends
            return _refuse(400, f"unreadable payload ({type(exc).__name__})", len(body), client)
        bolt_response = await run_in_threadpool(app.dispatch, bolt_request)
        return Response(
            status_code=bolt_response.status,
            content=bolt_response.body,
            headers=bolt_response.first_headers_without_set_cookie(),
        )

    return [Route(ROUTE, slack_events, methods=["POST"])]
