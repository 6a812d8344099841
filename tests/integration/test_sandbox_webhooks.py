"""The sandbox's webhooks as a receiver sees them: signed, Meta or Kapso shaped, imperfect."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kapso.client import ApiTarget, WhatsAppClient
from kapso.sandbox import Sandbox, SandboxConfig, run_sandbox
from kapso.templates import TemplateSpec

APP_SECRET = "test-app-secret"
KAPSO_SECRET = "test-kapso-secret"
HOLIDAY = TemplateSpec(
    "holiday_promotion",
    "en_US",
    "POSITIONAL",
    ["1"],
    [
        {"type": "BODY", "text": "Hi {{1}}, check out our special holiday offers!"},
        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Show me"}]},
    ],
)


class Receiver:
    """A tiny webhook endpoint on 127.0.0.1 recording every POST (headers and raw body)."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, raw))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self) -> list[tuple[dict[str, str], bytes]]:
        with self.lock:
            return list(self.posts)

    def wait_for(self, done: Callable[[], bool], what: str, limit: float = 30.0) -> None:
        # A generous upper bound for a condition, not a timing assertion.
        deadline = time.monotonic() + limit
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"never saw {what}")
            time.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def config(url: str, **kw: Any) -> SandboxConfig:
    defaults: dict[str, Any] = {
        "latency_ms": 0,
        "throughput": 10_000,
        "webhook_url": url,
        "app_secret": APP_SECRET,
        "kapso_secret": KAPSO_SECRET,
        "speed": 1000.0,
        "read_rate": 1.0,
        "reply_rate": 0.5,
        "duplicate_rate": 0.3,
        "out_of_order_rate": 0.3,
        "batch_interval_ms": 20,
        "batch_max": 25,
    }
    return SandboxConfig(**{**defaults, **kw})


def send_all(sb: Sandbox, numbers: list[str]) -> dict[str, str]:
    target = ApiTarget("main", "sandbox", sb.base_url, "100200300", "900800700", "sandbox-key")

    async def go() -> dict[str, str]:
        async with WhatsAppClient() as client:
            results = await asyncio.gather(
                *[
                    client.send_template(
                        target,
                        to=n,
                        template=HOLIDAY,
                        params={"1": "Ana"},
                        callback_data=f"bb1:b:{i}",
                    )
                    for i, n in enumerate(numbers)
                ]
            )
        return {n.lstrip("+"): r.wamid for n, r in zip(numbers, results, strict=True)}

    return asyncio.run(go())


def meta_events(receiver: Receiver) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    statuses: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for headers, raw in receiver.snapshot():
        expected = hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        assert headers["x-hub-signature-256"] == f"sha256={expected}"
        body = json.loads(raw)
        assert body["object"] == "whatsapp_business_account"
        for entry in body["entry"]:
            assert entry["id"] == "900800700"
            for change in entry["changes"]:
                if change["field"] != "messages":
                    continue
                value = change["value"]
                assert value["metadata"]["phone_number_id"] == "100200300"
                assert value["metadata"]["display_phone_number"].isdigit()
                statuses += value.get("statuses", [])
                messages += value.get("messages", [])
    return statuses, messages


NUMBERS = [f"+155530{i:04d}7" for i in range(1, 41)] + ["+15553000026", "+15553000050"]


def test_meta_webhooks_are_signed_and_cover_every_status_and_replies(
    receiver: Receiver,
) -> None:
    with run_sandbox(config(receiver.url)) as sb:
        wamids = send_all(sb, NUMBERS)

        def complete() -> bool:
            statuses, messages = meta_events(receiver)
            seen = {(s["id"], s["status"]) for s in statuses}
            ok = all((w, "read") in seen for n, w in wamids.items() if not n.endswith(("26", "50")))
            return ok and (wamids["15553000026"], "failed") in seen and len(messages) >= 5

        receiver.wait_for(complete, "read or failed statuses for everyone and some replies")
    statuses, messages = meta_events(receiver)
    assert {s["status"] for s in statuses} == {"sent", "delivered", "read", "failed"}
    assert all(s["biz_opaque_callback_data"].startswith("bb1:b:") for s in statuses)
    by_wamid = {w: n for n, w in wamids.items()}
    failed = {
        by_wamid[s["id"]]: s["errors"][0]["code"] for s in statuses if s["status"] == "failed"
    }
    assert failed == {"15553000026": 131026, "15553000050": 131050}
    pairs = [(s["id"], s["status"]) for s in statuses]
    assert len(pairs) > len(set(pairs)), "some statuses are delivered twice"
    assert {m["type"] for m in messages} == {"text", "button"}
    assert all(m["from"] in wamids for m in messages)
    quoted = [m for m in messages if "context" in m]
    assert quoted and all(m["context"]["id"] == wamids[m["from"]] for m in quoted)
    taps = {m["button"]["text"] for m in messages if m["type"] == "button"}
    assert taps <= {"Show me", "Not interested"}  # the template's quick-reply buttons


def test_kapso_format_is_signed_with_the_kapso_secret_and_batched(receiver: Receiver) -> None:
    with run_sandbox(config(receiver.url, webhook_format="kapso", reply_rate=1.0)) as sb:
        wamids = send_all(sb, NUMBERS[:20])

        def events() -> dict[str, list[dict[str, Any]]]:
            found: dict[str, list[dict[str, Any]]] = {}
            for headers, raw in receiver.snapshot():
                expected = hmac.new(KAPSO_SECRET.encode(), raw, hashlib.sha256).hexdigest()
                assert headers["x-webhook-signature"] == expected
                assert headers["x-webhook-payload-version"] == "v2"
                assert headers["x-idempotency-key"]
                body = json.loads(raw)
                items = body["data"] if body.get("batch") else [body]
                if body.get("batch"):
                    assert headers["x-webhook-batch"] == "true"
                    assert headers["x-batch-size"] == str(len(items))
                found.setdefault(headers["x-webhook-event"], []).extend(items)
            return found

        receiver.wait_for(
            lambda: (
                len(events().get("whatsapp.message.received", [])) >= 20
                and len(events().get("whatsapp.message.read", [])) >= 20
            ),
            "a read status and a reply from every recipient",
        )
    found = events()
    assert {"whatsapp.message.sent", "whatsapp.message.delivered"} <= set(found)
    read = found["whatsapp.message.read"][0]
    assert read["phone_number_id"] == "100200300"
    assert read["message"]["id"] in wamids.values()
    raw_status = read["message"]["kapso"]["statuses"][0]
    assert raw_status["status"] == "read"
    assert raw_status["biz_opaque_callback_data"].startswith("bb1:b:")
    reply = found["whatsapp.message.received"][0]
    assert reply["message"]["kapso"]["direction"] == "inbound"
    assert reply["conversation"]["phone_number"].lstrip("+") in wamids


def test_pausing_a_template_posts_a_template_status_update(receiver: Receiver) -> None:
    with run_sandbox(config(receiver.url)) as sb:
        sb.set_template_status("holiday_promotion", "PAUSED")

        def update() -> list[dict[str, Any]]:
            return [
                change["value"]
                for _headers, raw in receiver.snapshot()
                for entry in json.loads(raw)["entry"]
                for change in entry["changes"]
                if change["field"] == "message_template_status_update"
            ]

        receiver.wait_for(lambda: bool(update()), "a template status update")
    [value] = update()
    assert value["event"] == "PAUSED"
    assert (value["message_template_name"], value["message_template_language"]) == (
        "holiday_promotion",
        "en_US",
    )


def test_an_inbound_message_can_be_injected(receiver: Receiver) -> None:
    with run_sandbox(config(receiver.url)) as sb:
        sb.inbound("15557770001", "STOP", context_id="wamid.ABC")
        receiver.wait_for(lambda: bool(meta_events(receiver)[1]), "the inbound message")
    [message] = meta_events(receiver)[1]
    assert message["from"] == "15557770001" and message["text"]["body"] == "STOP"
    assert message["context"]["id"] == "wamid.ABC"
