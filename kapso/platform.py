"""Kapso's Platform API, for what setup needs: registering a phone number's webhook."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

# Kapso's WhatsApp webhook events (docs.kapso.ai, "Message events").
DEFAULT_EVENTS = (
    "whatsapp.message.received",
    "whatsapp.message.sent",
    "whatsapp.message.delivered",
    "whatsapp.message.read",
    "whatsapp.message.failed",
    "whatsapp.contact.marketing_preference_changed",
)


class PlatformError(Exception):
    """The Platform API refused or could not be reached; the message says which and why."""


@dataclass(frozen=True)
class RegisteredWebhook:
    id: str
    url: str
    events: tuple[str, ...]
    kind: str


def register_webhook(
    platform_url: str,
    api_key: str,
    *,
    phone_number_id: str,
    url: str,
    secret: str,
    events: tuple[str, ...] = DEFAULT_EVENTS,
    kind: str = "kapso",
    timeout: float = 20.0,
) -> RegisteredWebhook:
    """`POST /whatsapp/phone_numbers/{id}/webhooks`: subscribe `url` to the number's events."""
    endpoint = f"{platform_url.rstrip('/')}/whatsapp/phone_numbers/{phone_number_id}/webhooks"
    webhook: dict[str, Any] = {"url": url, "secret_key": secret, "kind": kind, "active": True}
    if kind == "kapso":
        webhook["events"] = list(events)
        webhook["payload_version"] = "v2"
    try:
        response = httpx.post(
            endpoint,
            json={"whatsapp_webhook": webhook},
            headers={"X-API-Key": api_key, "Accept": "application/json"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise PlatformError(
            f"Kapso's Platform API at {platform_url} is unreachable ({exc})."
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code >= 400:
        detail = body.get("error") or body.get("message") or response.text[:200]
        if response.status_code in (401, 403):
            detail = f"{detail} (check KAPSO_API_KEY)"
        raise PlatformError(
            f"Kapso refused the webhook for phone number {phone_number_id}: "
            f"HTTP {response.status_code}: {detail}"
        )
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or not data.get("id"):
        raise PlatformError("Kapso's answer had no webhook id; check KAPSO_PLATFORM_URL.")
    return RegisteredWebhook(
        id=str(data["id"]),
        url=str(data.get("url") or url),
        events=tuple(data.get("events") or events),
        kind=str(data.get("kind") or kind),
    )
