"""The sandbox's HTTP endpoints (aiohttp): the WhatsApp API we use, plus `/_sandbox/` admin."""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import time
from typing import Any

from aiohttp import web

from kapso.sandbox.config import API_VERSION, SandboxConfig
from kapso.sandbox.emitter import Emitter, digits
from kapso.sandbox.state import SandboxState
from kapso.sandbox.validate import Refusal, check_components, check_template_status

log = logging.getLogger(__name__)

VERSION = r"{version:v\d+\.\d+}"
HTTP_STATUS = {190: 401, 131000: 500, 2: 503, 133004: 503, 131016: 503}
FIRST_NAMES = ("Ana", "Bruno", "Chen", "Dara", "Emeka", "Fatima", "Gus", "Hana", "Ivan", "Jo")
# Meta's titles for the codes a rule can answer with (others: "Rejected").
RULE_TITLES: dict[int | str, str] = {
    131026: "Message undeliverable",
    131000: "Something went wrong",
    131042: "Business eligibility payment issue",
    131048: "Spam rate limit hit",
    131050: "Unable to deliver the message: the user stopped marketing messages",
    131063: "Message failed to send because of an account restriction",
    130497: "Business account is restricted from messaging users in this country",
    "marketing_preference_stopped": "The contact stopped marketing messages",
}
STATE = web.AppKey("state", SandboxState)
EMITTER = web.AppKey("emitter", Emitter)


def error_response(
    code: int, message: str, details: str, status: int | None = None
) -> web.Response:
    body = {
        "error": {
            "message": f"(#{code}) {message}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details},
            "fbtrace_id": "SBX" + base64.b32encode(random.randbytes(10)).decode()[:16],
        }
    }
    return web.json_response(body, status=status or HTTP_STATUS.get(code, 400))


def throughput_level(mps: int) -> str:
    """Meta's level for the sandbox's throughput; any other rate is reported as its number (a
    sandbox extension the client reads too), so a sandbox at 200/s never claims STANDARD's 80."""
    if mps >= 1000:
        return "HIGH"
    return {80: "STANDARD", 20: "COEXISTENCE"}.get(mps, str(mps))


def wa_id_for(number: str) -> str:
    """The wa_id WhatsApp reports: Brazil drops the mobile 9, Mexico adds the 1."""
    if number.startswith("55") and len(number) == 13 and number[4] == "9":
        return number[:4] + number[5:]
    if number.startswith("52") and len(number) == 12:
        return "521" + number[2:]
    return number


class Api:
    """Request handlers; one instance per running sandbox."""

    def __init__(self, config: SandboxConfig, state: SandboxState, emitter: Emitter) -> None:
        self.config = config
        self.state = state
        self.emitter = emitter
        self.rng = random.Random(config.seed + 1)

    async def _latency(self) -> None:
        cfg = self.config
        if cfg.latency_ms > 0:
            jitter = self.rng.uniform(1 - cfg.latency_jitter, 1 + cfg.latency_jitter)
            await asyncio.sleep(cfg.latency_ms * jitter / 1000)

    def _auth(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("X-API-Key")
        bearer = request.headers.get("Authorization", "")
        if not key and bearer.lower().startswith("bearer "):
            key = bearer[7:].strip()
        if not key or key != self.config.api_key:
            return error_response(
                190,
                "Invalid OAuth access token - Cannot parse access token",
                "The API key or access token is not valid for this sandbox.",
            )
        if self.state.key_revoked:
            return error_response(
                190,
                "Error validating access token: Session has expired",
                "The API key was revoked.",
            )
        return None

    def _refuse(self, refusal: Refusal) -> web.Response:
        self.state.codes[refusal.code] += 1
        if isinstance(refusal.code, str):  # Kapso's own error, as its proxy answers it
            body = {"error": {"code": refusal.code, "message": refusal.message}}
            return web.json_response(body, status=422)
        return error_response(refusal.code, refusal.message, refusal.details)

    # -- the WhatsApp API --------------------------------------------------------------------

    async def send(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied:
            self.state.codes[190] += 1
            return denied
        pnid = request.match_info["phone_number_id"]
        now = time.monotonic()
        arrived_at = time.time()
        within = self.state.arrive(pnid, now)
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        await self._latency()
        if not isinstance(payload, dict):
            return self._refuse(Refusal(100, "Invalid parameter", "The body is not JSON."))
        if not within:
            return self._refuse(
                Refusal(
                    130429,
                    "Rate limit hit",
                    f"Cloud API message throughput ({self.config.throughput_for(pnid)}/s) "
                    "has been reached.",
                )
            )
        result = self._check_send(pnid, payload, now)
        if isinstance(result, Refusal):
            return self._refuse(result)
        record, template = result
        record["arrived_at"] = arrived_at  # `time` is when it was accepted, after the latency
        self.state.accept(pnid, record, now)
        self.emitter.plan(record, template)
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": payload.get("to"), "wa_id": record["wa_id"]}],
                "messages": [{"id": record["wamid"], "message_status": "accepted"}],
            }
        )

    def _check_send(
        self, pnid: str, payload: dict[str, Any], now: float
    ) -> Refusal | tuple[dict[str, Any], dict[str, Any] | None]:
        if payload.get("messaging_product") != "whatsapp":
            return Refusal(100, "Invalid parameter", "messaging_product must be 'whatsapp'.")
        to = digits(str(payload.get("to") or ""))
        recipient = str(payload.get("recipient") or "")
        if not to and recipient:  # a business-scoped user id, for users who hide their number
            to = self.state.users.get(recipient, "")
            if not to:
                return Refusal(131026, "Message undeliverable", f"no user {recipient[:40]!r}.")
        if not 7 <= len(to) <= 15:
            return Refusal(100, "Invalid parameter", f"'to' ({payload.get('to')!r}) is invalid.")
        kind = payload.get("type", "text")
        record: dict[str, Any] = {
            "to": to,
            "wa_id": wa_id_for(to),
            "phone_number_id": pnid,
            "type": kind,
            "callback_data": payload.get("biz_opaque_callback_data"),
            "template": None,
            "language": None,
            "params": {},
            "text": None,
            "context": (payload.get("context") or {}).get("message_id"),
        }
        template: dict[str, Any] | None = None
        if kind == "template":
            body = payload.get("template") or {}
            name = str(body.get("name") or "")
            language = str((body.get("language") or {}).get("code") or "")
            template = self.state.find_template(self.config.waba_for(pnid), name, language)
            refusal = check_template_status(template, name, language)
            if refusal:
                return refusal
            assert template is not None
            checked = check_components(template, list(body.get("components") or []))
            if isinstance(checked, Refusal):
                return checked
            record.update(
                template=name, language=language, params=checked, category=template["category"]
            )
        elif kind == "text":
            text = (payload.get("text") or {}).get("body")
            if not isinstance(text, str) or not text.strip():
                return Refusal(131008, "Required parameter is missing", "text.body is empty.")
            record["text"] = text
        else:
            return Refusal(131051, "Unsupported message type", f"type {kind!r} is not simulated.")
        for suffix, code in self.config.reject_rules.items():
            if to.endswith(suffix):  # an empty suffix: every send (an account-level error)
                return Refusal(code, RULE_TITLES.get(code, "Rejected"), f"sandbox rule '{suffix}'")
        last = self.state.last_to.get((pnid, to))
        recent = last is not None and now - last < self.config.pair_rate_seconds
        if self.config.pair_rate and recent and kind == "template":
            return Refusal(
                131056,
                "(Business Account, Consumer Account) pair rate limit hit",
                "Too many messages sent from this phone number to the same phone number "
                "in a short period of time.",
            )
        record.update(wamid=self.state.next_wamid(), time=time.time())
        return record, template

    async def templates(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied:
            return denied
        await self._latency()
        items = list(self.state.templates_of(request.match_info["waba_id"]))
        query = request.query
        for key in ("name", "status", "category", "language"):
            if query.get(key):
                items = [t for t in items if str(t.get(key, "")).upper() == query[key].upper()]
        try:
            limit = min(int(query.get("limit", "25")), self.config.templates_page_max)
            start = int(base64.b64decode(query["after"]).decode()) if query.get("after") else 0
        except ValueError:
            return error_response(100, "Invalid parameter", "limit or after is invalid.")
        page = items[start : start + max(limit, 1)]
        end = start + len(page)
        paging: dict[str, Any] = {
            "cursors": {
                "before": base64.b64encode(str(start).encode()).decode(),
                "after": base64.b64encode(str(end).encode()).decode(),
            }
        }
        if end < len(items):
            paging["next"] = str(request.url.update_query({"after": paging["cursors"]["after"]}))
        return web.json_response({"data": page, "paging": paging})

    async def phone_number(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied:
            return denied
        await self._latency()
        pnid = request.match_info["phone_number_id"]
        mps = self.config.throughput_for(pnid)
        fields: dict[str, Any] = {
            "display_phone_number": self.config.display_phone_number,
            "verified_name": "Sandbox Business",
            "quality_rating": "GREEN",
            "throughput": {"level": throughput_level(mps)},
            "whatsapp_business_manager_messaging_limit": self.config.messaging_limit_for(pnid),
        }
        # Like the Graph API: only the fields asked for (and the id), all when none are named.
        asked = [f.strip() for f in request.query.get("fields", "").split(",") if f.strip()]
        if asked:
            fields = {k: v for k, v in fields.items() if k in asked}
        return web.json_response({**fields, "id": pnid})

    async def contacts(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied:
            return denied
        await self._latency()
        pnid = request.match_info["phone_number_id"]
        contacts = self._contacts(pnid)
        if request.query.get("wa_id"):
            contacts = [c for c in contacts if c["wa_id"] == digits(request.query["wa_id"])]
        try:
            limit = max(1, min(int(request.query.get("limit", "20")), 100))
            after = request.query.get("after")
            start = int(base64.b64decode(after).decode()) if after else 0
        except ValueError:
            return error_response(100, "Invalid parameter", "limit or after is invalid.")
        page = contacts[start : start + limit]
        end = start + len(page)
        paging: dict[str, Any] = {
            "cursors": {
                "before": base64.b64encode(str(start).encode()).decode(),
                "after": base64.b64encode(str(end).encode()).decode(),
            }
        }
        if end < len(contacts):
            paging["next"] = str(request.url.update_query({"after": paging["cursors"]["after"]}))
        return web.json_response({"data": page, "paging": paging})

    def _contacts(self, pnid: str) -> list[dict[str, Any]]:
        """The seeded contacts of a number, then everyone it has messaged."""
        seen: dict[str, dict[str, Any]] = {}
        for i in range(self.config.contacts):
            wa_id = f"1555020{i:04d}"
            seen[wa_id] = {
                "id": f"contact-{pnid}-{i}",
                "wa_id": wa_id,
                "profile_name": f"{FIRST_NAMES[i % len(FIRST_NAMES)]} Sandbox{i}",
                "phone_number_id": pnid,
                "created_at": "2025-01-01T00:00:00Z",
            }
        for record in self.state.messages:
            if record["phone_number_id"] == pnid and record["wa_id"] not in seen:
                seen[record["wa_id"]] = {
                    "id": f"contact-{pnid}-{record['wa_id']}",
                    "wa_id": record["wa_id"],
                    "profile_name": None,
                    "phone_number_id": pnid,
                }
        return list(seen.values())

    # -- admin -------------------------------------------------------------------------------

    async def admin_messages(self, request: web.Request) -> web.Response:
        items = self.state.messages
        for key in ("to", "template", "callback_data", "phone_number_id"):
            if request.query.get(key):
                value = request.query[key]
                value = digits(value) if key == "to" else value
                items = [m for m in items if str(m.get(key)) == value]
        return web.json_response({"count": len(items), "messages": items})

    async def admin_webhooks(self, request: web.Request) -> web.Response:
        """Webhook events as posted: when first posted (`emitted_at`) and acknowledged."""
        items = list(self.state.webhook_log)
        for key in ("kind", "id", "status"):
            if request.query.get(key):
                items = [e for e in items if str(e.get(key)) == request.query[key]]
        return web.json_response({"count": len(items), "events": items})

    async def admin_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.stats())

    async def admin_template_status(self, request: web.Request) -> web.Response:
        body = await request.json()
        waba = str(body.get("waba_id") or self.config.waba_for(""))
        status = str(body.get("status", "")).upper()
        changed = []
        for template in self.state.templates_of(waba):
            if template["name"] == body.get("name") and body.get("language") in (
                None,
                template["language"],
            ):
                template["status"] = status
                self.emitter.template_status(waba, template, body.get("reason"))
                changed.append(f"{template['name']}:{template['language']}")
        if not changed:
            return web.json_response({"error": f"no template {body.get('name')!r}"}, status=404)
        return web.json_response({"changed": changed, "status": status})

    async def admin_api_key(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.state.key_revoked = bool(body.get("revoked"))
        return web.json_response({"revoked": self.state.key_revoked})

    async def admin_reset(self, request: web.Request) -> web.Response:
        self.state.reset()
        return web.json_response({"reset": True})

    async def admin_settings(self, request: web.Request) -> web.Response:
        body = await request.json()
        unknown = [k for k in body if not hasattr(self.config, k)]
        if unknown:
            return web.json_response({"error": f"unknown settings {unknown}"}, status=400)
        for key, value in body.items():
            setattr(self.config, key, value)
        return web.json_response({k: getattr(self.config, k) for k in body})

    async def admin_inbound(self, request: web.Request) -> web.Response:
        body = await request.json()
        message = self.emitter.inbound(
            str(body.get("phone_number_id") or "100200300"),
            digits(str(body["from"])),
            str(body.get("text", "Hi")),
            body.get("context_id"),
            str(body.get("name") or "Sandbox User"),
            str(body.get("type") or "text"),
        )
        return web.json_response({"message": message})


def build_app(config: SandboxConfig) -> web.Application:
    state = SandboxState(config)
    emitter = Emitter(state, config)
    api = Api(config, state, emitter)
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[STATE] = state
    app[EMITTER] = emitter
    app.add_routes(
        [
            web.get("/_sandbox/messages", api.admin_messages),
            web.get("/_sandbox/stats", api.admin_stats),
            web.get("/_sandbox/webhooks", api.admin_webhooks),
            web.post("/_sandbox/templates/status", api.admin_template_status),
            web.post("/_sandbox/api-key", api.admin_api_key),
            web.post("/_sandbox/reset", api.admin_reset),
            web.post("/_sandbox/settings", api.admin_settings),
            web.post("/_sandbox/inbound", api.admin_inbound),
            web.post(f"/{VERSION}/{{phone_number_id}}/messages", api.send),
            web.get(f"/{VERSION}/{{waba_id}}/message_templates", api.templates),
            web.get(f"/{VERSION}/{{phone_number_id}}/contacts", api.contacts),
            web.get(f"/{VERSION}/{{phone_number_id}}", api.phone_number),
        ]
    )

    async def lifecycle(app: web.Application) -> Any:
        emitter.start()
        yield
        await emitter.stop()

    app.cleanup_ctx.append(lifecycle)
    return app


def base_url(host: str, port: int) -> str:
    return f"http://{host}:{port}/{API_VERSION}"
