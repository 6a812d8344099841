"""One async client for Kapso's WhatsApp proxy, Meta's Graph API and the sandbox.

Built for bulk sending: aiohttp's connection pool, a semaphore holding at most `max_in_flight`
requests, no retries or sleeps inside a call — every failure comes back at once as a classified
`WhatsAppError`. Why aiohttp rather than httpx (benchmarks/bench_client.py, 200 ms latency):
httpx's own pool collapses above ~50 in flight (≈30 req/s at 200–500 in flight), and httpx
over aiohttp's transport costs about twice the client CPU per request (≈1.1 vs ≈0.5 ms).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp
from yarl import URL

from kapso.errors import WhatsAppError
from kapso.templates import (
    MissingParameter,
    TemplateSpec,
    UnsupportedTemplate,
    WaTemplate,
    build_components,
)
from kapso.templates import parse_template as _parse_template
from kapso.webhooks import user_id_or_none

log = logging.getLogger(__name__)

# Meta's `throughput.level` → messages per second (Cloud API docs: 80 by default, 1,000 when
# upgraded; numbers shared with the WhatsApp Business app get 20).
THROUGHPUT_LEVELS = {"STANDARD": 80, "HIGH": 1000, "COEXISTENCE": 20}
# The phone number's fields we read: the throughput level, and the business portfolio's messaging
# limit (Meta deprecated the per-number `messaging_limit_tier` for
# `whatsapp_business_manager_messaging_limit`, e.g. TIER_2K; the old field is still read when
# an API answers with it).
LIMIT_FIELDS = "throughput,whatsapp_business_manager_messaging_limit,display_phone_number"
_TIER = re.compile(r"^(?:TIER_)?(\d+)([KM]?)$")
TEMPLATE_FIELDS = "id,name,language,status,category,parameter_format,components,rejected_reason"
PAGE_LIMIT = 100


@dataclass(frozen=True)
class ApiTarget:
    """Where and as whom to call: one WhatsApp configuration, with its credential resolved."""

    config_name: str
    provider: str  # kapso | meta | sandbox
    base_url: str
    phone_number_id: str
    business_account_id: str
    credential: str = field(repr=False)
    credential_env: str | None = None

    def headers(self) -> dict[str, str]:
        if self.provider == "meta":
            return {"Authorization": f"Bearer {self.credential}"}
        return {"X-API-Key": self.credential}


@dataclass(frozen=True)
class SendResult:
    wamid: str
    wa_id: str | None
    message_status: str | None


@dataclass(frozen=True)
class WaContact:
    wa_id: str
    phone: str
    name: str | None
    raw: dict[str, Any]


@dataclass(frozen=True)
class NumberLimits:
    """What WhatsApp says about a phone number's sending limits (None: not said)."""

    throughput_level: str | None  # STANDARD, HIGH, … as WhatsApp names it
    throughput_mps: int | None  # the level in messages per second
    messaging_limit: str | None  # TIER_250, TIER_2K, …, TIER_UNLIMITED
    display_phone_number: str | None = None


def _throughput(value: Any) -> tuple[str | None, int | None]:
    level = value.get("level") if isinstance(value, Mapping) else value
    if isinstance(level, bool) or level is None:
        return None, None
    if isinstance(level, int):
        return (str(level), level) if level > 0 else (None, None)
    text = str(level).strip().upper()
    if text.isdigit():
        return text, int(text) or None
    return (text or None), THROUGHPUT_LEVELS.get(text)


def _tier(value: Any) -> str | None:
    """`TIER_2K` as WhatsApp writes it; a bare number (2000) becomes `TIER_2K` too."""
    if isinstance(value, Mapping):
        value = value.get("tier") or value.get("value")
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, int):
        if value >= 1_000_000 and value % 1_000_000 == 0:
            return f"TIER_{value // 1_000_000}M"
        return f"TIER_{value // 1000}K" if value >= 1000 and value % 1000 == 0 else f"TIER_{value}"
    text = str(value).strip().upper()
    if "UNLIMITED" in text:
        return "TIER_UNLIMITED"
    match = _TIER.match(text)
    return f"TIER_{match.group(1)}{match.group(2)}" if match else text[:32]


@dataclass(frozen=True)
class TemplatePage:
    """Templates of a WABA, and the ones we could not parse (name, reason)."""

    templates: list[WaTemplate]
    unsupported: list[tuple[str, str]]


class WhatsAppClient:
    """Async WhatsApp API client; use `async with` or call `aclose()`."""

    def __init__(self, max_in_flight: int = 500, timeout: float = 15.0) -> None:
        self._max_in_flight = max_in_flight
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None  # made inside the running loop
        self._slots = asyncio.Semaphore(max_in_flight)

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            connector = aiohttp.TCPConnector(limit=self._max_in_flight, ttl_dns_cache=300)
            self._http = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._http

    async def __aenter__(self) -> WhatsAppClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- sending -------------------------------------------------------------------------

    async def send_template(
        self,
        target: ApiTarget,
        *,
        to: str,
        template: TemplateSpec,
        params: Mapping[str, str],
        callback_data: str,
    ) -> SendResult:
        body: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
        try:
            components = build_components(template, params)
        except MissingParameter as exc:  # what WhatsApp would answer, without the round trip
            raise WhatsAppError(
                code=131008, title=str(exc).capitalize(), config_name=target.config_name
            ) from None
        if components:
            body["components"] = components
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to.lstrip("+"),
            "type": "template",
            "biz_opaque_callback_data": callback_data,
            "template": body,
        }
        return _send_result(await self._post_message(target, payload))

    async def send_text(
        self, target: ApiTarget, *, to: str, body: str, reply_to: str | None = None
    ) -> SendResult:
        payload: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            **_addressee(to),
            "type": "text",
            "text": {"body": body, "preview_url": False},
        }
        if reply_to:
            payload["context"] = {"message_id": reply_to}
        return _send_result(await self._post_message(target, payload))

    async def _post_message(self, target: ApiTarget, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._request(
            target, "POST", f"{target.phone_number_id}/messages", json_body=payload
        )

    # -- reading -------------------------------------------------------------------------

    async def list_templates(self, target: ApiTarget) -> list[WaTemplate]:
        """Every template of the WABA we can send (all pages); others are logged and left out."""
        page = await self.fetch_templates(target)
        for _name, reason in page.unsupported:
            log.warning("Configuration %s: skipped %s", target.config_name, reason)
        return page.templates

    async def fetch_templates(self, target: ApiTarget) -> TemplatePage:
        """Every template of the WABA, keeping apart the ones we cannot send."""
        templates: list[WaTemplate] = []
        unsupported: list[tuple[str, str]] = []
        path = f"{target.business_account_id}/message_templates"
        params: dict[str, Any] = {"limit": PAGE_LIMIT, "fields": TEMPLATE_FIELDS}
        while True:
            data = await self._request(target, "GET", path, params=params)
            for item in _list(data, "data", target):
                try:
                    templates.append(_parse_template(item))
                except UnsupportedTemplate as exc:
                    unsupported.append((str(item.get("name", "?")), str(exc)))
            after = _next_cursor(data)
            if after is None:
                return TemplatePage(templates, unsupported)
            params = {**params, "after": after}

    async def get_throughput(self, target: ApiTarget) -> int | None:
        """The number's messages/s from `throughput.level`; None when WhatsApp does not say."""
        return (await self.get_number_limits(target)).throughput_mps

    async def get_number_limits(self, target: ApiTarget) -> NumberLimits:
        """`GET {base}/{phone_number_id}?fields=throughput,…`: throughput level and messaging
        limit tier of the number (both Meta's Cloud API and Kapso's proxy answer it)."""
        data = await self._request(
            target, "GET", target.phone_number_id, params={"fields": LIMIT_FIELDS}
        )
        level, mps = _throughput(data.get("throughput"))
        tier = _tier(data.get("whatsapp_business_manager_messaging_limit"))
        display = data.get("display_phone_number")
        return NumberLimits(
            throughput_level=level,
            throughput_mps=mps,
            messaging_limit=tier or _tier(data.get("messaging_limit_tier")),
            display_phone_number=str(display) if display else None,
        )

    async def iter_contacts(self, target: ApiTarget) -> AsyncIterator[WaContact]:
        """The contacts Kapso knows for the number (Kapso's proxy only), page by page."""
        if target.provider == "meta":
            raise WhatsAppError(
                code=None,
                title="Listing contacts needs Kapso's proxy",
                http_status=400,
                config_name=target.config_name,
                hint="Meta's API has no contact list; use a CSV, or a kapso configuration.",
            )
        path = f"{target.phone_number_id}/contacts"
        params: dict[str, Any] = {"limit": PAGE_LIMIT}
        while True:
            data = await self._request(target, "GET", path, params=params)
            for item in _list(data, "data", target):
                wa_id = str(item.get("wa_id") or "").lstrip("+")
                if not wa_id.isdigit():
                    continue
                name = item.get("profile_name") or item.get("name")
                yield WaContact(wa_id, f"+{wa_id}", str(name) if name else None, dict(item))
            after = _next_cursor(data)
            if after is None:
                return
            params = {**params, "after": after}

    # -- the one place that talks HTTP -----------------------------------------------------

    async def _request(
        self,
        target: ApiTarget,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> dict[str, Any]:
        url = f"{target.base_url.rstrip('/')}/{path}"
        if not within_base(url, target.base_url):
            raise _outside_base(target, path)
        query = {k: str(v) for k, v in params.items()} if params else None
        async with self._slots:
            try:
                # No redirects: aiohttp would carry X-API-Key to wherever a 3xx points.
                async with self._session().request(
                    method,
                    url,
                    params=query,
                    json=json_body,
                    headers=target.headers(),
                    allow_redirects=False,
                ) as response:
                    raw = await response.read()
                    status = response.status
                    content_type = response.headers.get("Content-Type", "")
                    location = response.headers.get("Location", "")
            except TimeoutError as exc:
                raise _network_error(target, url, "timed out") from exc
            except aiohttp.ClientError as exc:
                raise _network_error(target, url, f"failed: {exc or type(exc).__name__}") from exc
        if 300 <= status < 400:
            raise _outside_base(target, path, redirect=location)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise _not_json(target, url, status, content_type)
        if status >= 400 or "error" in data:
            raise _api_error(target, status, data)
        return data


def within_base(url: str, base: str) -> bool:
    """Whether `url`, once normalised as it will be sent (`..` resolved), stays under `base`:
    same scheme, host and port, and a path below the base's. The credential goes nowhere else."""
    try:
        target, root = URL(url), URL(base)
    except (ValueError, TypeError):
        return False
    if target.user or target.password or root.scheme not in ("http", "https"):
        return False
    if (target.scheme, target.host, target.port) != (root.scheme, root.host, root.port):
        return False
    prefix = root.path.rstrip("/") + "/"
    return target.path.startswith(prefix) or target.path == root.path


def _outside_base(target: ApiTarget, path: str, *, redirect: str | None = None) -> WhatsAppError:
    where = f"a redirect to {redirect[:120]!r}" if redirect is not None else f"path {path[:80]!r}"
    log.error(
        "configuration %s: refused to send its API key outside its API base (%s)",
        target.config_name,
        where,
    )
    # Reported as a refused credential: it stops the broadcast instead of failing recipients.
    return WhatsAppError(
        code=None,
        title=(
            f"Refused to send the API key outside the configuration's API base "
            f"{target.base_url} ({where})"
        ),
        http_status=401,
        config_name=target.config_name,
        hint="Check the configuration's phone number id, WABA id and API base URL.",
    )


def _addressee(to: str) -> dict[str, str]:
    """A phone number goes in `to`; a business-scoped user id (no number known) in `recipient`,
    as Meta's send API takes it for users who hide their number behind a username."""
    if user_id_or_none(to):
        return {"recipient": to}
    return {"to": to.lstrip("+")}


def _send_result(data: Mapping[str, Any]) -> SendResult:
    messages = data.get("messages") or [{}]
    contacts = data.get("contacts") or [{}]
    wamid = messages[0].get("id")
    if not wamid:
        raise WhatsAppError(code=None, title="The send response has no message id", http_status=200)
    return SendResult(
        wamid=str(wamid),
        wa_id=contacts[0].get("wa_id"),
        message_status=messages[0].get("message_status"),
    )


def _list(data: Mapping[str, Any], key: str, target: ApiTarget) -> list[dict[str, Any]]:
    items = data.get(key, [])
    if not isinstance(items, list):
        raise WhatsAppError(
            code=None,
            title=f"The response's '{key}' is not a list",
            http_status=200,
            config_name=target.config_name,
            hint="Check that the API base URL points at a WhatsApp API.",
        )
    return [i for i in items if isinstance(i, dict)]


def _next_cursor(data: Mapping[str, Any]) -> str | None:
    paging = data.get("paging")
    if not isinstance(paging, Mapping) or not paging.get("next"):
        return None
    cursors = paging.get("cursors")
    after = cursors.get("after") if isinstance(cursors, Mapping) else None
    return str(after) if after else None


def _credential_hint(target: ApiTarget) -> str:
    env = target.credential_env or "the configuration's credential variable"
    return f"Put a valid API key/token in {env} and try again."


def _network_error(target: ApiTarget, url: str, what: str) -> WhatsAppError:
    return WhatsAppError(
        code=None,
        title=f"The request to {url} {what}",
        config_name=target.config_name,
        hint="It will be retried; if it persists, check the API base URL and the network.",
    )


def _not_json(target: ApiTarget, url: str, status: int, content_type: str) -> WhatsAppError:
    kind = "an HTML page" if "html" in content_type else f"a non-JSON body ({content_type or '?'})"
    return WhatsAppError(
        code=None,
        title=f"{url} answered with {kind} instead of WhatsApp JSON (a proxy or gateway?)",
        http_status=status,
        config_name=target.config_name,
        hint="Check the configuration's API base URL and any proxy in between.",
    )


def _api_error(target: ApiTarget, status: int, body: Mapping[str, Any]) -> WhatsAppError:
    """Meta's `{"error": {code, error_subcode, message, error_data}}`, or Kapso's own errors
    (a string code such as `marketing_preference_stopped`, in `error` or `error.code`)."""
    error = body.get("error")
    kapso_code = _kapso_code(body)
    subcode: int | None = None
    if isinstance(error, Mapping):
        code = error.get("code")
        error_data = error.get("error_data")
        details = error_data.get("details") if isinstance(error_data, Mapping) else None
        title = str(
            error.get("error_user_title") or error.get("message") or body.get("message") or ""
        )
        title = re.sub(r"^\(#\d+\)\s*", "", title) or "Unknown error"
        code_i = _as_int(code)
        subcode = _as_int(error.get("error_subcode"))
    else:
        code_i, details = None, None
        title = str(body.get("message") or error or f"HTTP {status}")
    result = WhatsAppError(
        code=code_i,
        title=title,
        details=str(details) if details else None,
        http_status=status,
        config_name=target.config_name,
        subcode=subcode,
        kapso_code=kapso_code,
    )
    credential = code_i in (0, 10, 190) or (code_i is None and status in (401, 403))
    if credential and result.classification.stops_broadcast:
        result = WhatsAppError(
            code=code_i,
            title=title,
            details=result.details,
            http_status=status,
            config_name=target.config_name,
            hint=_credential_hint(target),
            subcode=subcode,
        )
    return result


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _kapso_code(body: Mapping[str, Any]) -> str | None:
    """A non-numeric error code (Kapso's own), wherever Kapso put it."""
    error = body.get("error")
    candidates = [body.get("code"), body.get("error_code"), error]
    if isinstance(error, Mapping):
        candidates += [error.get("code"), error.get("type"), error.get("error_code")]
    for value in candidates:
        if isinstance(value, str) and value.strip() and not value.strip().isdigit():
            name = value.strip().lower()
            if re.fullmatch(r"[a-z][a-z0-9_]*", name) and "_" in name:
                return name
    return None
