"""Run the sandbox: in a background thread (tests, benchmarks) or as the process (CLI)."""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from kapso.sandbox.config import SandboxConfig
from kapso.sandbox.server import base_url, build_app


class Sandbox:
    """A running sandbox: its URLs and its admin endpoints as methods."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.root = f"http://{host}:{port}"
        self.base_url = base_url(host, port)

    def _admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 (our own 127.0.0.1 server)
            f"{self.root}/_sandbox/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())

    def messages(self, **filters: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        result: list[dict[str, Any]] = self._admin("GET", f"messages?{query}")["messages"]
        return result

    def webhooks(self, **filters: str) -> list[dict[str, Any]]:
        """Webhook events posted so far, with `emitted_at` and `acked_at` (epoch seconds)."""
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        result: list[dict[str, Any]] = self._admin("GET", f"webhooks?{query}")["events"]
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._admin("GET", "stats")
        return result

    def set_template_status(
        self, name: str, status: str, *, language: str | None = None, waba_id: str | None = None
    ) -> None:
        self._admin(
            "POST",
            "templates/status",
            {"name": name, "status": status, "language": language, "waba_id": waba_id},
        )

    def revoke_key(self) -> None:
        self._admin("POST", "api-key", {"revoked": True})

    def restore_key(self) -> None:
        self._admin("POST", "api-key", {"revoked": False})

    def reset(self) -> None:
        self._admin("POST", "reset", {})

    def settings(self, **values: Any) -> None:
        self._admin("POST", "settings", values)

    def inbound(
        self, wa_id: str, text: str, *, context_id: str | None = None, kind: str = "text"
    ) -> None:
        """Make `wa_id` write: a text, an image captioned `text`, or a reaction `text` to
        `context_id` (kind "text" | "image" | "reaction")."""
        body = {"from": wa_id, "text": text, "context_id": context_id, "type": kind}
        self._admin("POST", "inbound", body)


async def _start(config: SandboxConfig) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(build_app(config), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, backlog=2048, reuse_address=True)
    await site.start()
    server = site._server  # aiohttp keeps the bound socket here; needed for port 0
    sockets = getattr(server, "sockets", None) or []
    port = sockets[0].getsockname()[1] if sockets else config.port
    return runner, int(port)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop()


@contextmanager
def run_sandbox(config: SandboxConfig | None = None) -> Iterator[Sandbox]:
    """A sandbox served from a background thread on 127.0.0.1 until the block ends."""
    config = config or SandboxConfig()
    loop = _new_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            holder["runner"], holder["port"] = loop.run_until_complete(_start(config))
        except BaseException as exc:
            holder["error"] = exc
            started.set()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(holder["runner"].cleanup())
        loop.close()

    thread = threading.Thread(target=run, name="whatsapp-sandbox", daemon=True)
    thread.start()
    started.wait(30)
    if "error" in holder:
        raise holder["error"]
    try:
        yield Sandbox(config.host, holder["port"])
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


# The sandbox stands in for Meta's servers, whose clock our own process's pauses do not move.
# It keeps every accepted message: with the collector's defaults, full collections over that
# growing heap stall it for tens of milliseconds, and requests then arrive stamped in a bunch,
# which its throughput window counts as a burst the sender never made. So the foreground
# process collects young objects rarely and freezes what it has kept, every FREEZE_SECONDS.
GC_THRESHOLDS = (50_000, 50, 100)
FREEZE_SECONDS = 2.0


async def _freeze_kept_objects() -> None:
    while True:
        await asyncio.sleep(FREEZE_SECONDS)
        gc.freeze()


def serve(config: SandboxConfig, ready: Callable[[Sandbox], None] | None = None) -> None:
    """Serve in the foreground until SIGINT or SIGTERM; `ready` is told the URLs once bound."""

    async def main() -> None:
        gc.set_threshold(*GC_THRESHOLDS)
        freezer = asyncio.create_task(_freeze_kept_objects())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        runner, port = await _start(config)
        if ready:
            ready(Sandbox(config.host, port))
        try:
            await stop.wait()
        finally:
            freezer.cancel()
            await runner.cleanup()

    loop = _new_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
