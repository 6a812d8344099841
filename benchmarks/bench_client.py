"""WhatsApp client throughput against the sandbox (a separate process, 200 ms latency).

Prints requests/s at 50, 200 and 500 in flight for our client (aiohttp underneath), httpx over
aiohttp's pool (httpx-aiohttp) and httpx's default pool, each as a ratio of the ideal
(in flight ÷ latency) with the client CPU per request, and the sandbox's own maximum.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from kapso.client import ApiTarget, WhatsAppClient
from kapso.templates import TemplateSpec, build_components

LATENCY_S = 0.2
LEVELS = (50, 200, 500)
SPEC = TemplateSpec(
    "holiday_promotion",
    "en_US",
    "POSITIONAL",
    ["1"],
    [{"type": "BODY", "text": "Hi {{1}}, check out our special holiday offers!"}],
)


def start_sandbox() -> tuple[subprocess.Popen[str], str]:
    command = [
        sys.executable, "-m", "bot.cli.main", "sandbox", "--port", "0",
        "--latency-ms", str(LATENCY_S * 1000), "--throughput", "1000000", "--no-pair-rate",
    ]  # fmt: skip
    process = subprocess.Popen(  # noqa: S603 (our own CLI)
        command, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    return process, line.strip().rsplit(" ", 1)[-1]


async def measure(n: int, in_flight: int, send: Callable[[int], Awaitable[None]]) -> float:
    slots = asyncio.Semaphore(in_flight)
    counter = iter(range(n))

    async def one(i: int) -> None:
        async with slots:
            await send(i)

    await asyncio.gather(*[one(i) for i in range(min(in_flight, n))])  # warm the pool
    started = time.perf_counter()
    await asyncio.gather(*[one(next(counter)) for _ in range(n)])
    return n / (time.perf_counter() - started)


async def ours(target: ApiTarget, n: int, in_flight: int) -> float:
    async with WhatsAppClient(max_in_flight=in_flight, timeout=60) as client:

        async def send(i: int) -> None:
            await client.send_template(
                target, to=f"+1555{i:07d}", template=SPEC, params={"1": "Ana"},
                callback_data=f"bench:{i}",
            )  # fmt: skip

        return await measure(n, in_flight, send)


def _body(i: int) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp", "to": f"1555{i:07d}", "type": "template",
        "biz_opaque_callback_data": f"bench:{i}",
        "template": {"name": "holiday_promotion", "language": {"code": "en_US"},
                     "components": [build_components(SPEC, {"1": "Ana"})[0]]},
    }  # fmt: skip


async def with_httpx(target: ApiTarget, n: int, in_flight: int, pool: str) -> float:
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    transport: httpx.AsyncBaseTransport = (
        AiohttpTransport(limits=limits)
        if pool == "aiohttp"
        else httpx.AsyncHTTPTransport(limits=limits)
    )
    url = f"{target.base_url}/{target.phone_number_id}/messages"
    async with httpx.AsyncClient(transport=transport, timeout=60) as client:

        async def send(i: int) -> None:
            response = await client.post(url, json=_body(i), headers=target.headers())
            assert response.status_code == 200, response.text

        return await measure(n, in_flight, send)


async def bare_aiohttp(target: ApiTarget, n: int, in_flight: int) -> float:
    connector = aiohttp.TCPConnector(limit=in_flight)
    url = f"{target.base_url}/{target.phone_number_id}/messages"
    async with aiohttp.ClientSession(connector=connector, headers=target.headers()) as session:

        async def send(i: int) -> None:
            async with session.post(url, json=_body(i)) as response:
                assert response.status == 200, await response.text()
                await response.read()

        return await measure(n, in_flight, send)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    process, base_url = start_sandbox()
    target = ApiTarget("bench", "sandbox", base_url, "100200300", "900800700", "sandbox-key")
    try:
        print(f"sandbox {base_url}, latency {LATENCY_S * 1000:.0f} ms (separate process)")
        print(
            f"{'client':<22}{'in flight':>10}{'req/s':>10}{'ideal':>8}{'ratio':>8}"
            f"{'client CPU ms/req':>19}"
        )
        for in_flight in LEVELS:
            n = max(1000, in_flight * 6)
            ideal = in_flight / LATENCY_S
            for name, run in (
                ("WhatsAppClient", ours(target, n, in_flight)),
                ("httpx+aiohttp pool", with_httpx(target, n, in_flight, "aiohttp")),
                ("httpx default pool", with_httpx(target, n, in_flight, "httpx")),
            ):
                cpu = time.process_time()
                rate = asyncio.run(run)
                per_request = (time.process_time() - cpu) * 1000 / (n + min(n, in_flight))
                print(
                    f"{name:<22}{in_flight:>10}{rate:>10.0f}{ideal:>8.0f}{rate / ideal:>8.2f}"
                    f"{per_request:>19.3f}"
                )
        cpu_before, wall_before = _cpu_seconds(process.pid), time.perf_counter()
        rate = asyncio.run(bare_aiohttp(target, 8000, 1000))
        busy = (_cpu_seconds(process.pid) - cpu_before) / (time.perf_counter() - wall_before)
        print(
            f"sandbox max (1,000 in flight, bare aiohttp client): {rate:.0f} sends/s "
            f"= {rate / 1000:.2f}x the engine benchmark's 1,000/s"
        )
        print(
            f"sandbox process busy {busy:.0%} of one core at that rate: capacity about "
            f"{rate / max(busy, 1e-6):.0f} sends/s on a free core"
        )
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
