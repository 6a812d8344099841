"""The benchmarks' load generator counts answers by status and fails loudly on a dropped one."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from benchmarks.http_load import build_post, post_all


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """200 for an even number in the body, 422 for an odd one."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    status = 200 if int(body) % 2 == 0 else 422
    payload = b'{"ok":true}'
    headers = [(b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        threading.Event().wait(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/post"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def test_every_answer_is_counted_by_status(url: str) -> None:
    requests = [build_post(url, str(i).encode(), {}) for i in range(300)]
    results = asyncio.run(post_all(url, requests, connections=8))
    assert results.statuses == {200: 150, 422: 150}
    assert results.ok == 150
    assert len(results.latencies) == 300


def test_a_connection_closed_without_an_answer_fails_the_run() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def hang_up() -> None:
        connection, _ = listener.accept()
        connection.recv(65536)
        connection.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/post"
    try:
        with pytest.raises(ConnectionError, match="closed by the server"):
            asyncio.run(asyncio.wait_for(post_all(url, [build_post(url, b"2", {})], 1), 30))
    finally:
        thread.join(timeout=10)
        listener.close()
