"""HTTP routes for WhatsApp webhooks (Meta and Kapso formats): verify, store, acknowledge."""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.inbox_writer import InboxWriter
from jobs.inbox import NewEvent, dedup_key
from jobs.runtime import Runtime
from kapso.webhooks import verify_kapso_signature, verify_meta_signature

log = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    pass


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


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

    async def meta(self, request: Request) -> Response:
        return await self._receive(request, "meta")

    async def kapso(self, request: Request) -> Response:
        return await self._receive(request, "kapso")

    def _signature_ok(self, source: str, raw: bytes, request: Request) -> bool:
        settings = self.runtime.settings
        hub = request.headers.get("x-hub-signature-256")
        if source == "meta":
            return verify_meta_signature(raw, hub, settings.whatsapp_app_secret)
        kapso = request.headers.get("x-webhook-signature")
        if kapso is not None:
            return verify_kapso_signature(raw, kapso, settings.kapso_webhook_secret)
        # Kapso's `meta` kind may forward Meta's own signature instead.
        return hub is not None and verify_meta_signature(raw, hub, settings.whatsapp_app_secret)

    async def _receive(self, request: Request, source: str) -> Response:
        settings = self.runtime.settings
        secret_name = "WHATSAPP_APP_SECRET" if source == "meta" else "KAPSO_WEBHOOK_SECRET"
        if not (settings.kapso_webhook_secret if source == "kapso" else None) and not (
            settings.whatsapp_app_secret
        ):
            log.error("%s webhook refused: %s is not set", source, secret_name)
            return _error(503, f"{secret_name} is not configured", **{"Retry-After": "60"})
        try:
            raw = await _read_body(request, settings.webhook_max_bytes)
        except BodyTooLarge:
            log.warning(
                "%s webhook refused: body over %d bytes", source, settings.webhook_max_bytes
            )
            return _error(413, f"body larger than {settings.webhook_max_bytes} bytes")
        if not self._signature_ok(source, raw, request):
            client = request.client.host if request.client else "?"
            log.warning("%s webhook refused: bad or missing signature (from %s)", source, client)
            return _error(401, "bad or missing signature")
        try:
            text = raw.decode("utf-8")
            payload = json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            log.warning("%s webhook refused: malformed JSON (%s)", source, exc)
            return _error(400, "body is not valid UTF-8 JSON")
        if not isinstance(payload, dict):
            log.warning(
                "%s webhook refused: JSON %s instead of an object", source, type(payload).__name__
            )
            return _error(400, "body must be a JSON object")
        event_type = self._event_type(source, payload, request)
        if event_type is None:
            log.warning("%s webhook refused: not a WhatsApp Business Account payload", source)
            return _error(422, "not a WhatsApp Business Account webhook (object/entry missing)")
        key = dedup_key(source, raw, request.headers.get("x-idempotency-key"))
        try:
            await self.writer.store(NewEvent(source, key, event_type, text))
        except Exception:
            log.exception("%s webhook not stored; the sender will retry", source)
            return _error(503, "could not store the webhook; retry later", **{"Retry-After": "5"})
        return JSONResponse({"ok": True})

    @staticmethod
    def _event_type(source: str, payload: dict[str, Any], request: Request) -> str | None:
        is_meta = "entry" in payload or "object" in payload
        if is_meta:
            if payload.get("object") != "whatsapp_business_account" or not isinstance(
                payload.get("entry"), list
            ):
                return None
            return _meta_event_type(payload)
        if source == "meta":
            return None
        header = request.headers.get("x-webhook-event")
        return header or str(payload.get("event") or ("batch" if payload.get("batch") else "?"))


def routes(runtime: Runtime) -> list[BaseRoute]:
    endpoints = WebhookEndpoints(runtime)
    return [
        Route("/webhooks/whatsapp", endpoints.verify, methods=["GET"]),
        Route("/webhooks/whatsapp", endpoints.meta, methods=["POST"]),
        Route("/webhooks/kapso", endpoints.kapso, methods=["POST"]),
    ]
