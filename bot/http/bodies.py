"""Reading request bodies within a limit, and the one brief log line for a refused request."""

from __future__ import annotations

import logging

from starlette.types import Receive

log = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    """The declared or streamed body is over the route's limit."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class Disconnected(Exception):
    """The client went away before sending the whole body."""


async def read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    """The body, read chunk by chunk; stops at `limit` bytes without buffering more."""
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BodyTooLarge(-1)
        if int(declared) > limit:
            raise BodyTooLarge(int(declared))
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(size)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def refused(route: str, reason: str, size: int | None, client: str | None = None) -> None:
    """One short line per refused request: route, reason, size (never the body)."""
    log.warning(
        "refused %s: %s (%s bytes%s)",
        route,
        reason,
        "?" if size is None or size < 0 else size,
        f", from {client}" if client else "",
    )
