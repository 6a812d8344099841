"""A lean HTTP/1.1 load generator: pre-built POSTs over keep-alive connections, one in flight each.

The benchmarks run it on the same cores as the server they measure, so its own CPU is part of
what limits the result: aiohttp's client spent ~0.27 ms per POST (about 60 % of what the web
server spent), this one a small fraction of that. It only understands what our server answers
(a status line, headers with `content-length`, a body), and fails loudly on anything else.
Run it on asyncio's own event loop: under uvloop these callbacks stalled after the first
answers (seen, not investigated).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Results:
    """What came back: status code counts and each request's latency in seconds."""

    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)


def build_post(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The bytes of one POST request, built once before the clock starts."""
    parts = urlsplit(url)
    lines = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {parts.netloc}",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Connection(asyncio.Protocol):
    """Sends the next request as soon as the previous answer is complete (no task per request)."""

    def __init__(self, requests: Iterator[bytes], results: Results, done: asyncio.Future[None]):
        self.requests = requests
        self.results = results
        self.done = done
        self.buffer = b""
        self.started = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._send_next()

    def _send_next(self) -> None:
        assert self.transport is not None
        request = next(self.requests, None)
        if request is None:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)
            return
        self.started = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].decode("latin-1").split("\r\n")
        length = next(
            (int(h.split(":", 1)[1]) for h in head[1:] if h.lower().startswith("content-length:")),
            None,
        )
        if length is None:
            self._fail(f"answer without content-length: {head[0]!r}")
            return
        if len(self.buffer) < end + 4 + length:
            return
        self.buffer = self.buffer[end + 4 + length :]
        self.results.latencies.append(time.perf_counter() - self.started)
        status = int(head[0].split(" ", 2)[1])
        self.results.statuses[status] = self.results.statuses.get(status, 0) + 1
        self._send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self._fail(f"connection closed by the server ({exc or 'EOF'})")

    def _fail(self, reason: str) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.close()


async def post_all(url: str, requests: Sequence[bytes], connections: int) -> Results:
    """Send every request (built by `build_post`) over `connections` keep-alive connections."""
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    results = Results()
    cursor = iter(requests)
    dones: list[asyncio.Future[None]] = []
    started = time.perf_counter()
    for _ in range(min(connections, len(requests))):
        done: asyncio.Future[None] = loop.create_future()
        dones.append(done)
        await loop.create_connection(
            lambda done=done: _Connection(cursor, results, done),  # type: ignore[misc]
            parts.hostname,
            parts.port,
        )
    await asyncio.gather(*dones)
    results.seconds = time.perf_counter() - started
    return results
