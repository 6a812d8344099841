"""Oversize and unsigned requests against the real web server: memory and log growth.

Starts `broadcast-bot web` (one process, SQLite, this machine's Redis at BENCH_REDIS_URL), then
posts 200 MB bodies to /slack/events, /webhooks/whatsapp and /webhooks/kapso — with a declared
Content-Length, and streamed (chunked, no length), one at a time and three at once — and reads the
server's resident memory (VmRSS, and the peak VmHWM) from /proc before and after. Then five unsigned
1 MB Slack requests at LOG_LEVEL=INFO, counting the bytes the server logs for them. Goals: no case
grows the server by more than a few MB beyond the 1 MB Slack limit or the webhook limit; each
refused request costs one short log line.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from migrations import run_upgrade

BIN = str(Path(sys.executable).with_name("broadcast-bot"))
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
BODY_BYTES = 200 * 1024 * 1024
CHUNK = b"x" * (64 * 1024)
GOAL_GROWTH_MB = 16.0
GOAL_LOG_BYTES_PER_REQUEST = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def post_huge(port: int, path: str, *, declared: bool) -> tuple[str, int]:
    """POST a 200 MB body byte by byte; returns (status line, bytes the server let us send)."""
    sent = 0
    head = f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {BODY_BYTES}\r\n" if declared else "Transfer-Encoding: chunked\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall((head + "\r\n").encode())
        try:
            while sent < BODY_BYTES:
                piece = CHUNK if declared else b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)
                sock.sendall(piece)
                sent += len(CHUNK)
            if not declared:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed while we were still sending: the point
        try:
            answer = sock.recv(256).split(b"\r\n", 1)[0].decode(errors="replace")
        except OSError as exc:
            answer = f"({type(exc).__name__})"
    return answer or "(closed)", sent


def run_case(pid: int, port: int, path: str, *, declared: bool, parallel: int) -> None:
    rss0, _ = memory_kb(pid)
    results: list[tuple[str, int]] = []

    def one() -> None:
        results.append(post_huge(port, path, declared=declared))

    threads = [threading.Thread(target=one) for _ in range(parallel)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - started
    rss1, hwm = memory_kb(pid)
    how = "declared" if declared else "chunked"
    statuses = sorted({r[0] for r in results})
    sent_mb = max(r[1] for r in results) / 1024 / 1024
    growth = (hwm - rss0) / 1024
    verdict = "ok" if growth <= GOAL_GROWTH_MB else "OVER GOAL"
    print(
        f"  {path:<20} {how:<8} x{parallel}: {', '.join(statuses):<28} client sent ≤{sent_mb:6.1f}"
        f" MB of 200 in {seconds:5.2f} s; server RSS {rss0 / 1024:6.1f} → {rss1 / 1024:6.1f} MB, "
        f"peak +{growth:5.1f} MB ({growth / 200:.3f} of the body) [{verdict}]"
    )


def unsigned_log_bytes(port: int, log_path: Path) -> None:
    before = log_path.stat().st_size
    body = b"payload=" + b"A" * (1024 * 1024 - 16)
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            head = (
                "POST /slack/events HTTP/1.1\r\nHost: bench\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"X-Slack-Request-Timestamp: {int(time.time())}\r\n"
                f"X-Slack-Signature: v0={'0' * 64}\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
            status = sock.recv(256).split(b"\r\n", 1)[0].decode()
    time.sleep(0.5)
    grown = log_path.stat().st_size - before
    verdict = "ok" if grown / 5 <= GOAL_LOG_BYTES_PER_REQUEST else "OVER GOAL"
    print(
        f"  5 unsigned 1 MB Slack requests ({status}): log +{grown} bytes, "
        f"{grown / 5:.0f} per request (goal ≤{GOAL_LOG_BYTES_PER_REQUEST}) [{verdict}]"
    )


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    db_url = f"sqlite:///{tmp / 'bench.db'}"
    run_upgrade(db_url)
    port = free_port()
    log_path = tmp / "web.log"
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": REDIS_URL,
        "PORT": str(port),
        "LOG_LEVEL": "INFO",
        "SLACK_SIGNING_SECRET": "bench-signing-secret",
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
        "WHATSAPP_APP_SECRET": "bench-app-secret",
        "KAPSO_WEBHOOK_SECRET": "bench-kapso-secret",
    }
    with log_path.open("wb") as log_file:
        web = subprocess.Popen(  # noqa: S603
            [BIN, "web", "--host", "127.0.0.1", "--workers", "1"],
            env=env,
            stdout=log_file,
            stderr=log_file,
        )
        try:
            for _ in range(300):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    time.sleep(0.05)
            time.sleep(0.5)
            print(f"web server pid {web.pid}, 200 MB bodies, memory from /proc (peak = VmHWM):")
            for path in ("/slack/events", "/webhooks/whatsapp", "/webhooks/kapso"):
                for declared in (True, False):
                    run_case(web.pid, port, path, declared=declared, parallel=1)
            for path in ("/slack/events", "/webhooks/whatsapp"):
                run_case(web.pid, port, path, declared=False, parallel=3)
            unsigned_log_bytes(port, log_path)
        finally:
            web.terminate()
            web.wait(30)


if __name__ == "__main__":
    main()
