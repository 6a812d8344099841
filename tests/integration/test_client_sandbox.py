"""The WhatsApp client against the sandbox over real HTTP: sends, reads and every error class."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kapso.client import ApiTarget, WhatsAppClient
from kapso.errors import ErrorAction, WhatsAppError
from kapso.sandbox import Sandbox, SandboxConfig, run_sandbox
from kapso.templates import TemplateSpec, WaTemplate


def target(sb: Sandbox, *, key: str = "sandbox-key", base_url: str | None = None) -> ApiTarget:
    return ApiTarget(
        config_name="main",
        provider="sandbox",
        base_url=base_url or sb.base_url,
        phone_number_id="100200300",
        business_account_id="900800700",
        credential=key,
        credential_env="KAPSO_API_KEY",
    )


def spec(template: WaTemplate) -> TemplateSpec:
    return TemplateSpec(
        template.name,
        template.language,
        template.parameter_format,
        template.parameter_names,
        template.components,
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    config = SandboxConfig(
        latency_ms=0,
        throughput=10_000,
        templates_page_max=3,
        contacts=250,
        reject_rules={"0500": 131000, "0026": 131026},
    )
    with run_sandbox(config) as sb:
        yield sb


@pytest.fixture
def sb(sandbox: Sandbox) -> Iterator[Sandbox]:
    sandbox.reset()
    yield sandbox
    sandbox.reset()


async def _templates(sb: Sandbox) -> dict[str, WaTemplate]:
    async with WhatsAppClient() as client:
        return {t.name: t for t in await client.list_templates(target(sb))}


async def _send(sb: Sandbox, to: str, name: str, params: dict[str, str], **kw: Any) -> Any:
    templates = await _templates(sb)
    async with WhatsAppClient() as client:
        return await client.send_template(
            target(sb, **kw),
            to=to,
            template=spec(templates[name]),
            params=params,
            callback_data="bb1:b-1:7",
        )


def _error(coro: Any) -> WhatsAppError:
    with pytest.raises(WhatsAppError) as info:
        run(coro)
    return info.value


def test_positional_template_is_accepted_and_recorded(sb: Sandbox) -> None:
    result = run(_send(sb, "+15550001111", "holiday_promotion", {"1": "Ana"}))
    assert result.wamid.startswith("wamid.")
    assert (result.wa_id, result.message_status) == ("15550001111", "accepted")
    [record] = sb.messages(to="15550001111")
    assert record["template"] == "holiday_promotion" and record["params"] == {"1": "Ana"}
    assert record["callback_data"] == "bb1:b-1:7" and record["wamid"] == result.wamid


def test_header_and_button_parameters_of_a_positional_template(sb: Sandbox) -> None:
    params = {
        "header_1": "A-9",
        "param1": "Ana",
        "param2": "A-9",
        "param3": "Friday",
        "button_0": "A-9",
    }
    run(_send(sb, "+15550001112", "order_update", params))
    [record] = sb.messages(to="15550001112")
    assert record["params"] == {
        "header_1": "A-9",
        "1": "Ana",
        "2": "A-9",
        "3": "Friday",
        "button_0": "A-9",
    }


def test_named_template_with_image_header_and_copy_code(sb: Sandbox) -> None:
    params = {
        "header_image_url": "https://example.com/x.png",
        "first_name": "Jessica",
        "discount_code": "HOLA10",
        "discount": "10%",
        "button_0": "HOLA10",
    }
    run(_send(sb, "+15550001113", "welcome_offer", params))
    [record] = sb.messages(to="15550001113")
    assert record["params"] == params


def test_wa_id_can_differ_from_the_dialled_number(sb: Sandbox) -> None:
    result = run(_send(sb, "+5511987654321", "holiday_promotion", {"1": "Ana"}))
    assert result.wa_id == "551187654321"


def test_text_reply_within_the_window_quotes_a_message(sb: Sandbox) -> None:
    async def go() -> Any:
        async with WhatsAppClient() as client:
            return await client.send_text(
                target(sb), to="+15550001114", body="Hello!", reply_to="wamid.X"
            )

    result = run(go())
    [record] = sb.messages(to="15550001114")
    assert record["text"] == "Hello!" and record["context"] == "wamid.X"
    assert result.wamid == record["wamid"]


def test_templates_are_listed_across_pages_with_unsupported_ones_apart(sb: Sandbox) -> None:
    async def go() -> Any:
        async with WhatsAppClient() as client:
            return await client.fetch_templates(target(sb))

    page = run(go())  # the sandbox serves 3 per page: 10 templates take 4 pages
    names = {t.name for t in page.templates}
    assert len(page.templates) == 9 and "holiday_promotion" in names
    assert {t.status for t in page.templates} >= {"APPROVED", "PENDING", "PAUSED", "DISABLED"}
    assert {t.parameter_format for t in page.templates} == {"POSITIONAL", "NAMED"}
    [(name, reason)] = page.unsupported
    assert name == "summer_carousel" and "CAROUSEL" in reason


def test_throughput_level_maps_to_messages_per_second(sb: Sandbox) -> None:
    async def go() -> int | None:
        async with WhatsAppClient() as client:
            return await client.get_throughput(target(sb))

    assert run(go()) == 1000  # 10,000/s configured: HIGH
    sb.settings(throughput=80)
    try:
        assert run(go()) == 80
    finally:
        sb.settings(throughput=10_000)


def test_contacts_are_listed_through_every_cursor_page(sb: Sandbox) -> None:
    async def go() -> list[Any]:
        async with WhatsAppClient() as client:
            return [c async for c in client.iter_contacts(target(sb))]

    contacts = run(go())
    assert len(contacts) == 250 and len({c.wa_id for c in contacts}) == 250
    assert all(c.phone == "+" + c.wa_id for c in contacts)
    assert contacts[0].name and "profile_name" in contacts[0].raw


def test_hundreds_in_flight_each_recipient_exactly_once(sb: Sandbox) -> None:
    async def go() -> list[Any]:
        templates = await _templates(sb)
        async with WhatsAppClient(max_in_flight=200) as client:
            return await asyncio.gather(
                *[
                    client.send_template(
                        target(sb),
                        to=f"+1555{i:04d}777",
                        template=spec(templates["holiday_promotion"]),
                        params={"1": f"n{i}"},
                        callback_data=f"bb1:b:{i}",
                    )
                    for i in range(600)
                ]
            )

    results = run(go())
    records = sb.messages()
    assert len(records) == 600 == len({r["to"] for r in records})
    assert {r.wamid for r in results} == {r["wamid"] for r in records}


# -- error classes ----------------------------------------------------------------------------


def test_throughput_cap_answers_130429_retry_later(sb: Sandbox) -> None:
    sb.settings(throughput=2)
    try:
        run(_send(sb, "+15550002001", "holiday_promotion", {"1": "a"}))
        # _send lists templates first: that call is not a send and is not counted
        run(_send(sb, "+15550002002", "holiday_promotion", {"1": "b"}))
        error = _error(_send(sb, "+15550002003", "holiday_promotion", {"1": "c"}))
    finally:
        sb.settings(throughput=10_000)
    assert error.code == 130429 and error.http_status == 400
    assert error.classification.action is ErrorAction.RETRY_LATER
    assert sb.stats()["throughput_rejections"] == 1


def test_pair_rate_answers_131056_retry_recipient(sb: Sandbox) -> None:
    run(_send(sb, "+15550003001", "holiday_promotion", {"1": "a"}))
    error = _error(_send(sb, "+15550003001", "holiday_promotion", {"1": "a"}))
    assert error.code == 131056
    assert error.classification.action is ErrorAction.RETRY_RECIPIENT


def test_wrong_parameter_count_fails_the_recipient(sb: Sandbox) -> None:
    async def go() -> Any:
        bad = TemplateSpec("holiday_promotion", "en_US", "POSITIONAL", [], [])
        async with WhatsAppClient() as client:
            return await client.send_template(
                target(sb), to="+15550004001", template=bad, params={}, callback_data="x"
            )

    error = _error(go())
    assert error.code == 132000
    assert error.classification.action is ErrorAction.FAIL_RECIPIENT


def test_named_parameters_without_names_are_refused(sb: Sandbox) -> None:
    async def go() -> Any:
        templates = await _templates(sb)
        as_positional = spec(templates["appointment_reminder"])
        as_positional = TemplateSpec(
            as_positional.name,
            "es",
            "POSITIONAL",
            ["first_name", "date"],
            as_positional.components,
        )
        async with WhatsAppClient() as client:
            return await client.send_template(
                target(sb),
                to="+15550004002",
                template=as_positional,
                params={"first_name": "Lu", "date": "lunes"},
                callback_data="x",
            )

    error = _error(go())
    assert error.code == 100
    assert error.classification.action is ErrorAction.FAIL_RECIPIENT


def test_recipient_rule_fails_the_recipient(sb: Sandbox) -> None:
    error = _error(_send(sb, "+15550000026", "holiday_promotion", {"1": "a"}))
    assert error.code == 131026
    assert error.classification.action is ErrorAction.FAIL_RECIPIENT


def test_server_error_is_retried_later(sb: Sandbox) -> None:
    error = _error(_send(sb, "+15550000500", "holiday_promotion", {"1": "a"}))
    assert (error.code, error.http_status) == (131000, 500)
    assert error.classification.action is ErrorAction.RETRY_LATER


@pytest.mark.parametrize(
    ("name", "language", "code"),
    [
        ("new_collection", "en_US", 132001),  # pending
        ("holiday_promotion", "fr", 132001),  # no such language
        ("nope", "en_US", 132001),  # no such template
        ("spring_sale", "en_US", 132015),  # paused
        ("old_newsletter", "en_US", 132016),  # disabled
    ],
)
def test_template_problems_stop_the_broadcast(
    sb: Sandbox, name: str, language: str, code: int
) -> None:
    async def go() -> Any:
        body = TemplateSpec(
            name, language, "POSITIONAL", ["1"], [{"type": "BODY", "text": "Hi {{1}}"}]
        )
        async with WhatsAppClient() as client:
            return await client.send_template(
                target(sb),
                to="+15550005001",
                template=body,
                params={"1": "a"},
                callback_data="x",
            )

    error = _error(go())
    assert error.code == code
    assert error.classification.stops_broadcast


def test_a_template_paused_mid_broadcast_stops_it(sb: Sandbox) -> None:
    run(_send(sb, "+15550006001", "holiday_promotion", {"1": "a"}))
    sb.set_template_status("holiday_promotion", "PAUSED")
    error = _error(_send(sb, "+15550006002", "holiday_promotion", {"1": "a"}))
    assert error.code == 132015


def test_a_bad_or_revoked_key_names_the_variable_to_fix(sb: Sandbox) -> None:
    error = _error(_send(sb, "+15550007001", "holiday_promotion", {"1": "a"}, key="wrong"))
    assert error.code == 190 and error.http_status == 401
    assert error.classification.action is ErrorAction.FAIL_BROADCAST
    assert "configuration 'main'" in str(error) and "KAPSO_API_KEY" in str(error)
    sb.revoke_key()
    error = _error(_send(sb, "+15550007002", "holiday_promotion", {"1": "a"}))
    assert error.code == 190
    sb.restore_key()
    run(_send(sb, "+15550007003", "holiday_promotion", {"1": "a"}))


def test_unreachable_api_is_a_retryable_network_error(sb: Sandbox) -> None:
    async def go() -> Any:
        async with WhatsAppClient(timeout=2) as client:
            return await client.get_throughput(target(sb, base_url="http://127.0.0.1:9/v24.0"))

    error = _error(go())
    assert error.code is None and error.http_status is None
    assert error.classification.action is ErrorAction.RETRY_LATER
    assert "configuration 'main'" in str(error)


def test_timeout_is_a_retryable_network_error() -> None:
    with run_sandbox(SandboxConfig(latency_ms=3000, latency_jitter=0)) as slow:

        async def go() -> Any:
            async with WhatsAppClient(timeout=0.3) as client:
                return await client.get_throughput(target(slow))

        error = _error(go())
    assert error.code is None
    assert error.classification.action is ErrorAction.RETRY_LATER
    assert "timed out" in str(error)


class _Proxy(BaseHTTPRequestHandler):
    """A misconfigured gateway: HTML where JSON was expected."""

    def do_GET(self) -> None:
        body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        self.send_response(502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_html_from_a_proxy_is_a_clear_error(sb: Sandbox) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/v24.0"

        async def go() -> Any:
            async with WhatsAppClient() as client:
                return await client.list_templates(target(sb, base_url=base))

        error = _error(go())
    finally:
        server.shutdown()
    assert error.http_status == 502 and error.code is None
    assert "HTML page" in str(error) and "base URL" in str(error)
    assert error.classification.action is ErrorAction.RETRY_LATER


def test_a_missing_parameter_fails_the_recipient_before_any_request(sb: Sandbox) -> None:
    error = _error(_send(sb, "+15550008001", "order_update", {"1": "Ana"}))
    assert error.code == 131008 and error.http_status is None
    assert "header_1" in str(error)
    assert error.classification.action is ErrorAction.FAIL_RECIPIENT
    assert sb.messages(to="15550008001") == []


def test_meta_provider_sends_a_bearer_token(sb: Sandbox) -> None:
    meta = ApiTarget("direct", "meta", sb.base_url, "100200300", "900800700", "sandbox-key")
    assert meta.headers() == {"Authorization": "Bearer sandbox-key"}

    async def go() -> int | None:
        async with WhatsAppClient() as client:
            return await client.get_throughput(meta)

    assert run(go()) == 1000


def test_number_limits_are_read_with_the_fields_meta_documents(sb: Sandbox) -> None:
    async def go() -> Any:
        async with WhatsAppClient() as client:
            return await client.get_number_limits(target(sb))

    limits = run(go())
    assert (limits.throughput_level, limits.throughput_mps) == ("HIGH", 1000)
    assert limits.messaging_limit == "TIER_10K"
    sb.settings(throughput=80, messaging_limit_per_number={"100200300": "TIER_250"})
    try:
        limits = run(go())
        assert (limits.throughput_level, limits.throughput_mps) == ("STANDARD", 80)
        assert limits.messaging_limit == "TIER_250"
    finally:
        sb.settings(throughput=10_000, messaging_limit_per_number={})


class _PhoneNumber(BaseHTTPRequestHandler):
    """Answers like the Graph API docs show: the fields asked for, the deprecated tier field too."""

    bodies: list[dict[str, Any]] = []
    paths: list[str] = []

    def do_GET(self) -> None:
        self.paths.append(self.path)
        body = json.dumps(self.bodies.pop(0)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_number_limits_accept_every_documented_shape(sb: Sandbox) -> None:
    _PhoneNumber.bodies = [
        # Meta: whatsapp_business_manager_messaging_limit replaces messaging_limit_tier.
        {
            "throughput": {"level": "STANDARD"},
            "whatsapp_business_manager_messaging_limit": "TIER_2K",
            "id": "100200300",
        },
        # An older answer: only the deprecated per-number field.
        {"throughput": {"level": "HIGH"}, "messaging_limit_tier": "TIER_100K", "id": "1"},
        # Kapso's platform API gives the limit as a number; a level WhatsApp adds later.
        {
            "throughput": {"level": "NOT_APPLICABLE"},
            "whatsapp_business_manager_messaging_limit": 2000,
        },
        {"id": "1"},
    ]
    _PhoneNumber.paths = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PhoneNumber)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/v24.0"

        async def go() -> list[Any]:
            async with WhatsAppClient() as client:
                return [await client.get_number_limits(target(sb, base_url=base)) for _ in range(4)]

        found = run(go())
    finally:
        server.shutdown()
    assert [(f.throughput_level, f.throughput_mps, f.messaging_limit) for f in found] == [
        ("STANDARD", 80, "TIER_2K"),
        ("HIGH", 1000, "TIER_100K"),
        ("NOT_APPLICABLE", None, "TIER_2K"),
        (None, None, None),
    ]
    assert _PhoneNumber.paths[0] == (
        "/v24.0/100200300?fields=throughput,whatsapp_business_manager_messaging_limit,"
        "display_phone_number"
    )
