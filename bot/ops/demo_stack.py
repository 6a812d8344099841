"""The one-command demo: a whole local deployment (sandbox WhatsApp API, web server, worker and a
small webhook agent) sending a real broadcast end to end, then cleaning up after itself."""

from __future__ import annotations

import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from jobs.agents import SIGNATURE_HEADER, agent_signature

SAMPLE_CSV = Path(__file__).parent / "demo_data" / "recipients.csv"
APP_SECRET = "demo-app-secret"  # noqa: S105 (the local sandbox signs with it; not a real secret)
AGENT_SECRET = "demo-agent-secret"  # noqa: S105 (the local demo agent checks it)
AGENT_SECRET_ENV = "DEMO_AGENT_SECRET"  # noqa: S105 (a variable name)
BIN = str(Path(sys.executable).with_name("broadcast-bot"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (127.0.0.1 only)
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the {what} did not start within {timeout:.0f} s")


class Processes:
    """Child processes of the demo, each in its own process group, all stopped on exit."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.logs = Path(tempfile.mkdtemp(prefix="broadcast-demo-"))
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.children[name] = subprocess.Popen(  # noqa: S603 (our own CLI)
            [BIN, *args], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def check(self) -> None:
        for name, child in self.children.items():
            if child.poll() is not None:
                raise RuntimeError(
                    f"the {name} process stopped (exit {child.returncode}); "
                    f"see {self.logs / (name + '.log')}"
                )

    def stop(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
        for child in self.children.values():
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(5)


class DemoAgent:
    """A webhook agent on 127.0.0.1 that checks signatures and keeps what it receives."""

    def __init__(self, on_message: Callable[[dict[str, Any]], None]) -> None:
        self.received: list[dict[str, Any]] = []
        self.bad_signatures = 0
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                expected = agent_signature(raw, AGENT_SECRET)
                if not hmac.compare_digest(expected, self.headers.get(SIGNATURE_HEADER, "")):
                    agent.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                payload = json.loads(raw)
                agent.received.append(payload)
                on_message(payload)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/agent"

    @contextmanager
    def running(self) -> Iterator[DemoAgent]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
