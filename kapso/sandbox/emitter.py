"""Status and reply webhooks after each accepted send: delayed, batched, signed, imperfect."""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import json
import logging
import random
import time
import uuid
from collections import defaultdict
from typing import Any

import aiohttp

from kapso.sandbox.config import SandboxConfig
from kapso.sandbox.state import SandboxState
from kapso.webhooks import sign

log = logging.getLogger(__name__)

ERROR_TITLES = {
    131026: "Message undeliverable",
    131049: "This message was not delivered to maintain healthy ecosystem engagement.",
    131050: "Unable to deliver the message. This recipient has chosen to stop receiving "
    "marketing messages on WhatsApp from your business.",
}
REPLY_TEXTS = ("Yes, I'm interested!", "How much is it?", "Thanks!", "Can you call me?", "Hola")
NAMES = ("Ana", "Bruno", "Chen", "Dara", "Emeka", "Fatima", "Gus", "Hana", "Ivan", "Jo")
KAPSO_EVENTS = {
    "sent": "whatsapp.message.sent",
    "delivered": "whatsapp.message.delivered",
    "read": "whatsapp.message.read",
    "failed": "whatsapp.message.failed",
}


def digits(number: str) -> str:
    return "".join(c for c in number if c.isdigit())


def user_id_for(wa_id: str) -> str:
    """A stable business-scoped user id for a number, shaped as Meta's (`US.` + digits)."""
    number = int(hashlib.sha256(wa_id.encode()).hexdigest()[:16], 16)
    return f"US.{number:020d}"


Ref = tuple[str, str, str | None]  # kind, id, status: what /_sandbox/webhooks lists per event
Payload = tuple[bytes, dict[str, str], list[Ref]]


def ref(event: dict[str, Any]) -> Ref:
    """How the webhook log names an event: a status by wamid, a reply by its message id."""
    if event["kind"] == "status":
        return ("status", str(event["status"]["id"]), str(event["status"]["status"]))
    if event["kind"] == "message":
        return ("message", str(event["message"]["id"]), None)
    value = event["value"]
    return ("template", str(value["message_template_name"]), str(value["event"]))


class Emitter:
    """Plans the events of each accepted message and posts them when they fall due."""

    def __init__(self, state: SandboxState, config: SandboxConfig) -> None:
        self.state = state
        self.config = config
        self.rng = random.Random(config.seed)
        self._due: list[tuple[float, int, dict[str, Any]]] = []
        self._seq = itertools.count()
        self._session: aiohttp.ClientSession | None = None
        self._posts: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(16)
        self._task: asyncio.Task[None] | None = None

    # -- planning --------------------------------------------------------------------------

    def _later(self, seconds: float) -> float:
        return seconds / max(self.config.speed, 1e-6)

    def _push(self, delay: float, event: dict[str, Any]) -> None:
        heapq.heappush(self._due, (time.monotonic() + delay, next(self._seq), event))

    def plan(self, record: dict[str, Any], template: dict[str, Any] | None) -> None:
        """Queue the statuses (and maybe a reply) for one accepted message."""
        if not self.config.webhook_url:
            return
        rng, cfg = self.rng, self.config
        failure = next(
            (code for suffix, code in cfg.failure_rules.items() if record["to"].endswith(suffix)),
            None,
        )
        if failure is not None:
            steps = [("failed", self._later(rng.uniform(0.5, 3.0)))]
            if rng.random() < cfg.out_of_order_rate:  # a late `sent` after the failure
                steps.append(("sent", steps[0][1] + self._later(rng.uniform(0.1, 1.0))))
        else:
            sent = self._later(rng.uniform(0.2, 1.0))
            delivered = sent + self._later(rng.uniform(0.5, 3.0))
            steps = [("sent", sent), ("delivered", delivered)]
            replies = record.get("type") == "template" and rng.random() < cfg.reply_rate
            if replies or rng.random() < cfg.read_rate:
                read = delivered + self._later(rng.uniform(1.0, 10.0))
                steps.append(("read", read))
                if rng.random() < cfg.out_of_order_rate:  # read arrives before delivered
                    steps[1] = ("delivered", read + self._later(rng.uniform(0.1, 1.0)))
                if replies:
                    self._plan_reply(record, template, read + self._later(rng.uniform(2, 20)))
        for status, delay in steps:
            event = self._status_event(record, status, delay, failure)
            self._push(delay, event)
            if rng.random() < cfg.duplicate_rate:
                self._push(delay + self._later(rng.uniform(0.1, 2.0)), event)

    def _status_event(
        self, record: dict[str, Any], status: str, delay: float, failure: int | None
    ) -> dict[str, Any]:
        raw: dict[str, Any] = {
            "id": record["wamid"],
            "status": status,
            "timestamp": str(int(time.time() + delay)),
            "recipient_id": record["wa_id"],
            "recipient_user_id": user_id_for(record["wa_id"]),
        }
        if self._hidden(record["wa_id"]):
            del raw["recipient_id"]
        if record.get("callback_data"):
            raw["biz_opaque_callback_data"] = record["callback_data"]
        if status == "failed" and failure is not None:
            title = ERROR_TITLES.get(failure, "Message failed to send")
            raw["errors"] = [
                {
                    "code": failure,
                    "title": title,
                    "message": title,
                    "error_data": {
                        "details": f"Sandbox rule: numbers ending like this fail with {failure}."
                    },
                }
            ]
        elif status in ("sent", "delivered"):
            raw["pricing"] = {
                "billable": True,
                "pricing_model": "PMP",
                "category": str(record.get("category") or "marketing").lower(),
                "type": "regular",
            }
        return {"kind": "status", "status": raw, "record": record}

    def _plan_reply(
        self, record: dict[str, Any], template: dict[str, Any] | None, delay: float
    ) -> None:
        rng, cfg = self.rng, self.config
        buttons = [
            b["text"]
            for c in (template or {}).get("components", [])
            if str(c.get("type", "")).upper() == "BUTTONS"
            for b in c.get("buttons", [])
            if str(b.get("type", "")).upper() == "QUICK_REPLY"
        ]
        context = {"from": digits(cfg.display_phone_number), "id": record["wamid"]}
        self.state.users[user_id_for(record["wa_id"])] = record["wa_id"]
        message: dict[str, Any] = {
            "from": record["wa_id"],
            "id": f"wamid.SBXIN{uuid.uuid4().hex[:20].upper()}",
            "timestamp": str(int(time.time() + delay)),
        }
        # Shares at zero draw nothing, so seeded runs without them stay as they were.
        if cfg.reaction_share > 0 and rng.random() < cfg.reaction_share:
            emoji = rng.choice(("\U0001f44d", "\u2764\ufe0f", "\U0001f602"))
            message.update(
                type="reaction", reaction={"message_id": record["wamid"], "emoji": emoji}
            )
        elif cfg.media_reply_share > 0 and rng.random() < cfg.media_reply_share:
            message.update(type="image", image=_image("Is this the one on sale?"), context=context)
        elif buttons and rng.random() < cfg.button_reply_share:
            tap = rng.choice(buttons)
            message.update(type="button", button={"payload": tap, "text": tap}, context=context)
        else:
            message.update(type="text", text={"body": rng.choice(REPLY_TEXTS)})
            if rng.random() < cfg.quote_rate:
                message["context"] = context
        self._push(
            delay,
            {"kind": "message", "message": message, "record": record, "name": rng.choice(NAMES)},
        )

    def inbound(
        self,
        phone_number_id: str,
        wa_id: str,
        text: str,
        context_id: str | None,
        name: str,
        kind: str = "text",
    ) -> dict[str, Any]:
        """An inbound message from `wa_id`, posted at once (the admin endpoint's doing): a text,
        an image with `text` as its caption, or a reaction to `context_id`."""
        message: dict[str, Any] = {
            "from": wa_id,
            "id": f"wamid.SBXIN{uuid.uuid4().hex[:20].upper()}",
            "timestamp": str(int(time.time())),
            "type": kind,
        }
        if kind == "image":
            message["image"] = _image(text)
        elif kind == "reaction":
            message["reaction"] = {"message_id": context_id, "emoji": text}
            context_id = None
        else:
            message.update(type="text", text={"body": text})
        if context_id:
            message["context"] = {
                "from": digits(self.config.display_phone_number),
                "id": context_id,
            }
        self.state.users[user_id_for(wa_id)] = wa_id
        record = {"phone_number_id": phone_number_id, "wa_id": wa_id, "to": wa_id}
        self._push(0.0, {"kind": "message", "message": message, "record": record, "name": name})
        return message

    def _hidden(self, wa_id: str) -> bool:
        return any(wa_id.endswith(suffix) for suffix in self.config.hidden_number_rules)

    def _identified(self, message: dict[str, Any]) -> dict[str, Any]:
        """The message as WhatsApp sends it: with the sender's user id, without the number when
        the sender hides it."""
        wa_id = str(message["from"])
        out = {**message, "from_user_id": user_id_for(wa_id)}
        if self._hidden(wa_id):
            del out["from"]
        return out

    def _contact(self, wa_id: str, name: str) -> dict[str, Any]:
        contact: dict[str, Any] = {"profile": {"name": name}, "user_id": user_id_for(wa_id)}
        if self._hidden(wa_id):
            contact["profile"]["username"] = f"@{name.lower()}{wa_id[-4:]}"
        else:
            contact["wa_id"] = wa_id
        return contact

    def template_status(self, waba_id: str, template: dict[str, Any], reason: str | None) -> None:
        value = {
            "event": template["status"],
            "message_template_id": int(template.get("id") or 0),
            "message_template_name": template["name"],
            "message_template_language": template["language"],
            "reason": reason or "NONE",
        }
        self._push(0.0, {"kind": "template", "waba": waba_id, "value": value})

    # -- delivering ------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        for task in list(self._posts):
            task.cancel()
        if self._session:
            await self._session.close()

    async def _run(self) -> None:
        interval = max(self.config.batch_interval_ms, 1.0) / 1000
        tick = min(interval, 0.02)
        pending: list[dict[str, Any]] = []
        last_flush = time.monotonic()
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            while self._due and self._due[0][0] <= now:
                pending.append(heapq.heappop(self._due)[2])
            if pending and (len(pending) >= self.config.batch_max or now - last_flush >= interval):
                self._flush(pending)
                pending = []
                last_flush = now

    def _flush(self, events: list[dict[str, Any]]) -> None:
        if not self.config.webhook_url:
            return
        for chunk_start in range(0, len(events), self.config.batch_max):
            chunk = events[chunk_start : chunk_start + self.config.batch_max]
            for body, headers, refs in self._payloads(chunk):
                task = asyncio.get_running_loop().create_task(self._post(body, headers, refs))
                self._posts.add(task)
                task.add_done_callback(self._posts.discard)

    def _payloads(self, events: list[dict[str, Any]]) -> list[Payload]:
        if self.config.webhook_format == "kapso":
            return self._kapso_payloads(events)
        return self._meta_payloads(events)

    def _meta_payloads(self, events: list[dict[str, Any]]) -> list[Payload]:
        entries: dict[str, list[dict[str, Any]]] = defaultdict(list)
        statuses: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in events:
            if event["kind"] == "template":
                entries[event["waba"]].append(
                    {"field": "message_template_status_update", "value": event["value"]}
                )
            elif event["kind"] == "status":
                statuses[event["record"]["phone_number_id"]].append(event["status"])
            else:
                pnid = event["record"]["phone_number_id"]
                value = self._value(pnid)
                value["contacts"] = [self._contact(event["message"]["from"], event["name"])]
                value["messages"] = [self._identified(event["message"])]
                entries[self.config.waba_for(pnid)].append({"field": "messages", "value": value})
        for pnid, items in statuses.items():
            value = self._value(pnid)
            value["statuses"] = items
            entries[self.config.waba_for(pnid)].append({"field": "messages", "value": value})
        body = {
            "object": "whatsapp_business_account",
            "entry": [{"id": waba, "changes": changes} for waba, changes in entries.items()],
        }
        raw = json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": "sha256=" + sign(raw, self.config.app_secret),
        }
        return [(raw, headers, [ref(e) for e in events])]

    def _value(self, phone_number_id: str) -> dict[str, Any]:
        return {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": digits(self.config.display_phone_number),
                "phone_number_id": phone_number_id,
            },
        }

    def _kapso_payloads(self, events: list[dict[str, Any]]) -> list[Payload]:
        by_event: dict[str, list[dict[str, Any]]] = defaultdict(list)
        refs: dict[str, list[Ref]] = defaultdict(list)
        out: list[Payload] = []
        for event in events:
            if event["kind"] == "template":  # Kapso forwards Meta's body for these
                body = {
                    "object": "whatsapp_business_account",
                    "entry": [
                        {
                            "id": event["waba"],
                            "changes": [
                                {"field": "message_template_status_update", "value": event["value"]}
                            ],
                        }
                    ],
                }
                out.append(
                    self._kapso_post(body, "whatsapp.template.status_update", [ref(event)], False)
                )
            elif event["kind"] == "status":
                name = KAPSO_EVENTS[event["status"]["status"]]
                by_event[name].append(self._kapso_status(event))
                refs[name].append(ref(event))
            else:
                by_event["whatsapp.message.received"].append(self._kapso_message(event))
                refs["whatsapp.message.received"].append(ref(event))
        for name, items in by_event.items():
            if len(items) == 1:
                out.append(self._kapso_post(items[0], name, refs[name], False))
            else:
                out.append(self._kapso_post({"batch": True, "data": items}, name, refs[name], True))
        return out

    def _kapso_post(
        self, body: dict[str, Any], event: str, refs: list[Ref], batch: bool
    ) -> Payload:
        raw = json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Webhook-Event": event,
            "X-Webhook-Signature": sign(raw, self.config.kapso_secret),
            "X-Idempotency-Key": str(uuid.uuid4()),
            "X-Webhook-Payload-Version": "v2",
        }
        if batch:
            headers.update({"X-Webhook-Batch": "true", "X-Batch-Size": str(len(refs))})
        return raw, headers, refs

    def _conversation(self, record: dict[str, Any], name: str | None = None) -> dict[str, Any]:
        conversation: dict[str, Any] = {
            "id": f"conv-{record['phone_number_id']}-{record['wa_id']}",
            "phone_number": f"+{record['wa_id']}",
            "user_id": user_id_for(record["wa_id"]),
            "phone_number_id": record["phone_number_id"],
            "status": "active",
        }
        if self._hidden(record["wa_id"]):  # Kapso: do not assume phone_number is present
            del conversation["phone_number"]
        if name:
            conversation["kapso"] = {"contact_name": name}
        return conversation

    def _kapso_status(self, event: dict[str, Any]) -> dict[str, Any]:
        record, raw = event["record"], event["status"]
        message: dict[str, Any] = {
            "id": raw["id"],
            "timestamp": raw["timestamp"],
            "type": record.get("type", "template"),
            "kapso": {
                "direction": "outbound",
                "status": raw["status"],
                "statuses": [raw],
                "origin": "cloud_api",
            },
        }
        return {
            "message": message,
            "conversation": self._conversation(record),
            "is_new_conversation": False,
            "phone_number_id": record["phone_number_id"],
        }

    def _kapso_message(self, event: dict[str, Any]) -> dict[str, Any]:
        record, raw = event["record"], self._identified(event["message"])
        content = raw.get("text", {}).get("body") or raw.get("button", {}).get("text")
        raw["kapso"] = {"direction": "inbound", "origin": "cloud_api", "content": content}
        return {
            "message": raw,
            "conversation": self._conversation(record, event["name"]),
            "is_new_conversation": False,
            "phone_number_id": record["phone_number_id"],
        }

    async def _post(self, raw: bytes, headers: dict[str, str], refs: list[Ref]) -> None:
        url = self.config.webhook_url
        if not url:
            return
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        async with self._slots:
            emitted_at = time.time()
            for attempt in range(self.config.webhook_retries + 1):
                try:
                    async with self._session.post(url, data=raw, headers=headers) as response:
                        await response.read()
                        if response.status < 300:
                            self.state.webhooks_posted += 1
                            self.state.webhook_events += len(refs)
                            self.state.log_webhook(refs, emitted_at, time.time(), attempt + 1)
                            return
                        problem = f"HTTP {response.status}"
                except (aiohttp.ClientError, TimeoutError) as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                log.info("webhook to %s failed (%s), attempt %d", url, problem, attempt + 1)
                await asyncio.sleep(self._later(min(2.0**attempt, 30.0)))
            self.state.webhook_failures += 1
            self.state.log_webhook(refs, emitted_at, None, attempt + 1)
            log.warning("webhook to %s dropped after %d attempts", url, attempt + 1)


def _image(caption: str) -> dict[str, Any]:
    media_id = str(uuid.uuid4().int)[:16]
    return {
        "caption": caption,
        "mime_type": "image/jpeg",
        "sha256": hashlib.sha256(media_id.encode()).hexdigest(),
        "id": media_id,
    }
