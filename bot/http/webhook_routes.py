"""HTTP routes for WhatsApp webhooks (Meta and Kapso formats): verify, store, acknowledge."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.http.bodies import BodyTooLarge, Disconnected, read_body, refused
from bot.http.inbox_writer import InboxWriter
from bot.http.metrics import WebhookCounter
from jobs.inbox import NewEvent, dedup_key
from jobs.runtime import Runtime
from kapso.webhooks import is_meta_payload, verify_kapso_signature, verify_meta_signature

log = logging.getLogger(__name__)


Reply = tuple[int, bytes, list[tuple[bytes, bytes]]]
OK: Reply = (200, b'{"ok":true}', [])


def _error(status: int, message: str, retry_after: int | None = None) -> Reply:
    extra = [(b"retry-after", str(retry_after).encode())] if retry_after else []
    return status, json.dumps({"ok": False, "error": message}).encode(), extra


class RawPost:
    """A bare ASGI endpoint: webhook intake is the hot path, so no Request/Response objects."""

    def __init__(self, handler: Callable[[dict[str, str], Receive, str], Awaitable[Reply]]) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        client = scope.get("client")
        try:
            status, payload, extra = await self.handler(
                headers, receive, client[0] if client else "?"
            )
        except Disconnected:
            return
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


ROUTES = {"meta": "/webhooks/whatsapp", "kapso": "/webhooks/kapso"}


def _meta_event_type(payload: dict[str, Any]) -> str:
    fields = {
        str(change.get("field"))
        for entry in payload.get("entry") or []
        if isinstance(entry, dict)
        for change in entry.get("changes") or []
        if isinstance(change, dict)
    }
    return ",".join(sorted(fields)) or "empty"


class WebhookEndpoints:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.writer = InboxWriter(runtime)

    async def verify(self, request: Request) -> Response:
        """Meta's subscription handshake: echo the challenge when the verify token matches."""
        params = request.query_params
        expected = self.runtime.settings.whatsapp_verify_token
        given = params.get("hub.verify_token", "")
        if (
            params.get("hub.mode") == "subscribe"
            and expected
            and hmac.compare_digest(given.encode(), expected.encode())
        ):
            return PlainTextResponse(params.get("hub.challenge", ""))
        if not expected:
            log.error("Meta webhook handshake refused: WHATSAPP_VERIFY_TOKEN is not set")
        else:
            log.warning("Meta webhook handshake refused: wrong hub.verify_token or hub.mode")
        return PlainTextResponse("verification failed", status_code=403)

    async def meta(self, headers: dict[str, str], receive: Receive, client: str) -> Reply:
        return await self._receive("meta", headers, receive, client)

    async def kapso(self, headers: dict[str, str], receive: Receive, client: str) -> Reply:
        return await self._receive("kapso", headers, receive, client)

    def _signature_ok(self, source: str, raw: bytes, headers: dict[str, str]) -> bool:
        settings = self.runtime.settings
        hub = headers.get("x-hub-signature-256")
        if source == "meta":
            return verify_meta_signature(raw, hub, settings.whatsapp_app_secret)
        kapso = headers.get("x-webhook-signature")
        if kapso is not None:
            return verify_kapso_signature(raw, kapso, settings.kapso_webhook_secret)
        # Kapso's `meta` kind may forward Meta's own signature instead.
        return hub is not None and verify_meta_signature(raw, hub, settings.whatsapp_app_secret)

    async def _receive(
        self, source: str, headers: dict[str, str], receive: Receive, client: str
    ) -> Reply:
        settings = self.runtime.settings
        secret_name = "WHATSAPP_APP_SECRET" if source == "meta" else "KAPSO_WEBHOOK_SECRET"
        if not (settings.kapso_webhook_secret if source == "kapso" else None) and not (
            settings.whatsapp_app_secret
        ):
            log.error("%s webhook refused: %s is not set", source, secret_name)
            return _error(503, f"{secret_name} is not configured", retry_after=60)
        route = ROUTES[source]
        try:
            raw = await read_body(receive, headers, settings.webhook_max_bytes)
        except BodyTooLarge as exc:
            refused(route, f"body over {settings.webhook_max_bytes} bytes", exc.size, client)
            return _error(413, f"body larger than {settings.webhook_max_bytes} bytes")
        if not self._signature_ok(source, raw, headers):
            refused(route, "bad or missing signature", len(raw), client)
            return _error(401, "bad or missing signature")
        try:
            text = raw.decode("utf-8")
            payload = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            refused(route, "not UTF-8 JSON", len(raw), client)
            return _error(400, "body is not valid UTF-8 JSON")
        except RecursionError:  # signed, but nested deeper than any WhatsApp payload
            refused(route, "JSON nested too deeply", len(raw), client)
            return _error(400, "body is nested too deeply")
        if not isinstance(payload, dict):
            refused(route, f"JSON {type(payload).__name__} instead of an object", len(raw), client)
            return _error(400, "body must be a JSON object")
        event_type = self._event_type(source, payload, headers)
        if event_type is None:
            refused(route, "not a WhatsApp Business Account payload", len(raw), client)
            return _error(422, "not a WhatsApp Business Account webhook (object/entry missing)")
        key = dedup_key(source, raw, headers.get("x-idempotency-key"))
        try:
            await self.writer.store(NewEvent(source, key, event_type, text))
        except Exception:
            log.exception("%s webhook not stored; the sender will retry", source)
            return _error(503, "could not store the webhook; retry later", retry_after=5)
        return OK

    @staticmethod
    def _event_type(source: str, payload: dict[str, Any], headers: dict[str, str]) -> str | None:
        is_meta = is_meta_payload(payload)
        if is_meta:
            if payload.get("object") != "whatsapp_business_account" or not isinstance(
                payload.get("entry"), list
            ):
                return None
            return _meta_event_type(payload)
        if source == "meta":
            return None
        header = headers.get("x-webhook-event")
        return header or str(payload.get("event") or ("batch" if payload.get("batch") else "?"))


class WebhookIntake:
    """The app in front of Starlette's: webhook POSTs go straight to their endpoint.

    Intake is the hot path, and Starlette's error and exception middleware and router are work
    done again for every POST; the rest (the GET handshake, Slack, health, metrics) goes through
    Starlette as before.
    """

    def __init__(self, app: ASGIApp, posts: dict[str, ASGIApp]) -> None:
        self.app = app
        self.posts = posts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.posts.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)


def posts(endpoints: WebhookEndpoints) -> dict[str, ASGIApp]:
    """The webhook POST endpoints by path, each counted by source and result."""
    runtime = endpoints.runtime
    return {
        ROUTES["meta"]: WebhookCounter(RawPost(endpoints.meta), runtime),
        ROUTES["kapso"]: WebhookCounter(RawPost(endpoints.kapso), runtime),
    }


def routes(endpoints: WebhookEndpoints, posts: dict[str, ASGIApp]) -> list[BaseRoute]:
    """The webhook routes for Starlette: the handshake, and the POSTs again so that a wrong
    method gets its 405 (POSTs themselves never reach it, see WebhookIntake)."""
    return [
        Route(ROUTES["meta"], endpoints.verify, methods=["GET"]),
        *(Route(path, app, methods=["POST"]) for path, app in posts.items()),
    ]
