"""A fake Slack Web API over real HTTP on 127.0.0.1, and requests signed exactly as Slack signs.

It records every call (method, parameters, headers), answers the methods the bot uses, serves file
downloads that need `Authorization: Bearer <bot token>` (or a 302 to an HTML login page, as Slack
does without the `files:read` scope), takes uploads the way `files_upload_v2` makes them, and can be
told to answer 429 with Retry-After for the next N calls of a method.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

BOT_TOKEN = "xoxb-fake-bot-token"
SIGNING_SECRET = "fake-signing-secret"
TEAM_ID = "T0FAKE"
BOT_USER_ID = "U0BOT"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeFile:
    id: str
    name: str
    content: bytes
    mimetype: str = "text/csv"
    filetype: str = "csv"
    redirect: bool = False  # answer the download with a 302 to a login page (missing scope)
    download_url: str | None = None

    def info(self, base: str) -> dict[str, Any]:
        info = {
            "id": self.id,
            "name": self.name,
            "title": self.name,
            "mimetype": self.mimetype,
            "filetype": self.filetype,
            "size": len(self.content),
            "url_private": f"{base}files/{self.id}/{self.name}",
            "url_private_download": f"{base}files/{self.id}/download/{self.name}",
        }
        if self.download_url:
            info["url_private"] = info["url_private_download"] = self.download_url
        return info


@dataclass
class Upload:
    file_id: str
    filename: str
    content: bytes = b""
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    edits: int = 0


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    files: dict[str, FakeFile] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    messages: dict[tuple[str, str], Message] = field(default_factory=dict)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    throttle: dict[str, tuple[int, int]] = field(default_factory=dict)  # method -> (n, retry)
    errors: dict[str, list[str]] = field(default_factory=dict)  # method -> queued errors
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)  # channel -> user ids
    responses: list[dict[str, Any]] = field(default_factory=list)  # posts to response_url


class FakeSlack:
    """Start with `with FakeSlack() as slack:`; `slack.api_url` goes in SLACK_API_URL."""

    def __init__(self, *, bot_token: str = BOT_TOKEN) -> None:
        self.bot_token = bot_token
        self.state = _State()
        self._lock = threading.Condition()
        self._ids = itertools.count(1)
        self._clock = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    @property
    def api_url(self) -> str:
        return self.base_url + "api/"

    @property
    def response_url(self) -> str:
        return self.base_url + "response"

    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- set-up ------------------------------------------------------------------------------

    def add_file(
        self,
        name: str,
        content: bytes,
        *,
        mimetype: str = "text/csv",
        filetype: str = "csv",
        redirect: bool = False,
        download_url: str | None = None,
    ) -> dict[str, Any]:
        """Register a file as if a user uploaded it; returns its `files[]` entry.
        `download_url` makes files.info name another download address (a remote file)."""
        file = FakeFile(
            id=f"F{next(self._ids):08d}",
            name=name,
            content=content,
            mimetype=mimetype,
            filetype=filetype,
            redirect=redirect,
            download_url=download_url,
        )
        with self._lock:
            self.state.files[file.id] = file
        return file.info(self.base_url)

    def rate_limit(self, method: str, times: int, retry_after: int = 1) -> None:
        """Answer the next `times` calls of `method` with 429 and Retry-After."""
        with self._lock:
            self.state.throttle[method] = (times, retry_after)

    def fail(self, method: str, error: str, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with {"ok": false, "error": error}."""
        with self._lock:
            self.state.errors.setdefault(method, []).extend([error] * times)

    def set_usergroup(self, group_id: str, users: list[str]) -> None:
        with self._lock:
            self.state.usergroups[group_id] = list(users)

    def set_members(self, channel: str, users: list[str]) -> None:
        """Who conversations.members lists for `channel` (two per page, to exercise paging)."""
        with self._lock:
            self.state.members[channel] = list(users)

    def set_user(self, user_id: str, **fields: Any) -> None:
        with self._lock:
            self.state.users[user_id] = {"id": user_id, **fields}

    # -- inspection --------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.state.calls if c.method == method]

    def messages_in(self, channel: str, thread_ts: str | None = None) -> list[Message]:
        with self._lock:
            return [
                m
                for m in self.state.messages.values()
                if m.channel == channel and (thread_ts is None or m.thread_ts == thread_ts)
            ]

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            return self.state.messages[(channel, ts)]

    def uploads_in(self, channel: str, thread_ts: str | None = None) -> list[Upload]:
        with self._lock:
            return [
                u
                for u in self.state.uploads.values()
                if u.channel == channel and (thread_ts is None or u.thread_ts == thread_ts)
            ]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until `predicate()` is truthy (calls arrive on other threads); returns it."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                value = predicate_safe(predicate)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("the fake Slack API never saw what the test waited for")
                self._lock.wait(min(left, 0.05))

    # -- the HTTP side -----------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                return

            def do_GET(self) -> None:
                fake._get(self)

            def do_POST(self) -> None:
                fake._post(self)

        return Handler

    def _get(self, h: BaseHTTPRequestHandler) -> None:
        path = urllib.parse.urlsplit(h.path).path
        if path.startswith("/files/"):
            self._download(h, path)
            return
        if path == "/login":
            _send(h, 200, b"<html><body>Sign in to Slack</body></html>", "text/html")
            return
        if path.startswith("/api/"):
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(h.path).query))
            self._api(h, path.removeprefix("/api/"), query)
            return
        _send(h, 404, b"not found", "text/plain")

    def _download(self, h: BaseHTTPRequestHandler, path: str) -> None:
        file_id = path.split("/")[2]
        with self._lock:
            file = self.state.files.get(file_id)
            self.state.calls.append(Call("download", {"file": file_id}, dict(h.headers)))
            self._lock.notify_all()
        authorised = h.headers.get("Authorization") == f"Bearer {self.bot_token}"
        if file is None:
            _send(h, 404, b"not found", "text/plain")
        elif file.redirect or not authorised:
            h.send_response(302)
            h.send_header("Location", self.base_url + "login")
            h.send_header("Content-Length", "0")
            h.end_headers()
        else:
            _send(h, 200, file.content, file.mimetype)

    def _post(self, h: BaseHTTPRequestHandler) -> None:
        path = urllib.parse.urlsplit(h.path).path
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        if path.startswith("/upload/"):
            file_id = path.split("/")[2]
            with self._lock:
                self.state.uploads[file_id].content = raw
                self.state.calls.append(Call("upload", {"file": file_id}, dict(h.headers)))
                self._lock.notify_all()
            _send(h, 200, b"OK - " + str(len(raw)).encode(), "text/plain")
            return
        if path == "/response":
            body = json.loads(raw or b"{}")
            with self._lock:
                self.state.responses.append(body)
                self.state.calls.append(Call("response_url", body, dict(h.headers)))
                self._lock.notify_all()
            _send(h, 200, b"ok", "text/plain")
            return
        if not path.startswith("/api/"):
            _send(h, 404, b"not found", "text/plain")
            return
        ctype = h.headers.get("Content-Type", "")
        params: dict[str, Any]
        if "json" in ctype:
            params = json.loads(raw or b"{}")
        else:
            params = dict(urllib.parse.parse_qsl(raw.decode()))
        for key in ("blocks", "view", "files", "attachments"):
            if isinstance(params.get(key), str):
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(params[key])
        self._api(h, path.removeprefix("/api/"), params)

    def _api(self, h: BaseHTTPRequestHandler, method: str, params: dict[str, Any]) -> None:
        headers = dict(h.headers)
        with self._lock:
            self.state.calls.append(Call(method, params, headers))
            self._lock.notify_all()
            times, retry = self.state.throttle.get(method, (0, 0))
            if times > 0:
                self.state.throttle[method] = (times - 1, retry)
                h.send_response(429)
                h.send_header("Retry-After", str(retry))
                h.send_header("Content-Type", "application/json")
                body = b'{"ok": false, "error": "ratelimited"}'
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body)
                return
            queued = self.state.errors.get(method)
            if queued:
                _json(h, {"ok": False, "error": queued.pop(0)})
                return
        auth = headers.get("Authorization", "")
        token = params.get("token") or auth.removeprefix("Bearer ")
        if token != self.bot_token:
            _json(h, {"ok": False, "error": "invalid_auth"})
            return
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        answer = handler(params) if handler else {}
        with self._lock:
            self._lock.notify_all()
        _json(h, {"ok": True, **answer})

    # -- methods -----------------------------------------------------------------------------

    def _ts(self) -> str:
        return f"{1_700_000_000 + next(self._clock)}.{next(self._ids):06d}"

    def _m_auth_test(self, _p: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://fake.slack.com/",
            "team": "Fake",
            "user": "broadcasts",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": "B0BOT",
        }

    def _m_chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        ts = self._ts()
        msg = Message(
            channel=p["channel"],
            ts=ts,
            text=p.get("text", ""),
            blocks=_blocks(p.get("blocks")),
            thread_ts=p.get("thread_ts"),
        )
        with self._lock:
            self.state.messages[(msg.channel, ts)] = msg
        return {"channel": msg.channel, "ts": ts, "message": {"text": msg.text, "ts": ts}}

    def _m_chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            msg = self.state.messages.get((p["channel"], p["ts"]))
            if msg is not None:
                msg.text = p.get("text", msg.text)
                msg.blocks = _blocks(p.get("blocks")) or msg.blocks
                msg.edits += 1
        return {"channel": p["channel"], "ts": p["ts"], "text": p.get("text", "")}

    def _m_chat_postEphemeral(self, _p: dict[str, Any]) -> dict[str, Any]:
        return {"message_ts": self._ts()}

    def _view(self, p: dict[str, Any]) -> dict[str, Any]:
        view = p["view"] if isinstance(p["view"], dict) else json.loads(p["view"])
        view_id = p.get("view_id") or f"V{next(self._ids):08d}"
        stored = {**view, "id": view_id, "hash": f"h{next(self._ids)}"}
        with self._lock:
            self.state.views[view_id] = stored
        return {"view": stored}

    _m_views_open = _view
    _m_views_update = _view
    _m_views_push = _view
    _m_views_publish = _view

    def _m_files_info(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            file = self.state.files.get(p.get("file", ""))
        if file is None:
            return {"ok": False, "error": "file_not_found"}
        return {"file": file.info(self.base_url)}

    def _m_files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{next(self._ids):08d}"
        with self._lock:
            self.state.uploads[file_id] = Upload(file_id=file_id, filename=p["filename"])
        return {"upload_url": f"{self.base_url}upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        files = p["files"] if isinstance(p["files"], list) else json.loads(p["files"])
        out = []
        with self._lock:
            for f in files:
                upload = self.state.uploads[f["id"]]
                upload.title = f.get("title")
                upload.channel = p.get("channel_id")
                upload.thread_ts = p.get("thread_ts")
                upload.initial_comment = p.get("initial_comment")
                out.append({"id": upload.file_id, "name": upload.filename, "title": upload.title})
        return {"files": out}

    def _m_usergroups_users_list(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"users": list(self.state.usergroups.get(p.get("usergroup", ""), []))}

    def _m_users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        user_id = p.get("user", "")
        with self._lock:
            user = self.state.users.get(user_id)
        return {
            "user": user
            or {
                "id": user_id,
                "tz": "UTC",
                "tz_label": "Coordinated Universal Time",
                "tz_offset": 0,
            }
        }

    def _m_conversations_members(self, p: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            members = list(self.state.members.get(p.get("channel", ""), []))
        start = int(p.get("cursor") or 0)
        page = members[start : start + 2]
        more = start + 2 < len(members)
        return {
            "members": page,
            "response_metadata": {"next_cursor": str(start + 2) if more else ""},
        }

    def _m_conversations_info(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = p.get("channel", "")
        return {"channel": {"id": channel, "name": channel.lower(), "is_member": True}}


def predicate_safe(predicate: Callable[[], Any]) -> Any:
    try:
        return predicate()
    except (KeyError, IndexError):
        return None


def _blocks(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return list(json.loads(value))
    return list(value or [])


def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str) -> None:
    h.send_response(status)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def _json(h: BaseHTTPRequestHandler, data: dict[str, Any]) -> None:
    _send(h, 200, json.dumps(data).encode(), "application/json; charset=utf-8")


# -- requests as Slack sends them ---------------------------------------------------------------


def signature(secret: str, timestamp: str, body: str) -> str:
    """`v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class SlackSender:
    """Posts signed Slack requests (commands, interactions, events, options) to our server."""

    url: str  # our /slack/events
    secret: str = SIGNING_SECRET
    team_id: str = TEAM_ID
    response_url: str = "http://127.0.0.1:9/response"
    _events: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def post(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        sent = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature(secret or self.secret, ts, body),
            **(headers or {}),
        }
        return httpx.post(self.url, content=body.encode(), headers=sent, timeout=30)

    def command(
        self, text: str, *, user: str = "U0ANA", channel: str = "C0CAMP", **kw: Any
    ) -> httpx.Response:
        form = {
            "token": "legacy",
            "team_id": self.team_id,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "campaigns",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/broadcast",
            "text": text,
            "api_app_id": "A0APP",
            "response_url": self.response_url,
            "trigger_id": f"trigger-{next(self._events)}",
        }
        return self.post(urllib.parse.urlencode(form), "application/x-www-form-urlencoded", **kw)

    def interaction(self, payload: dict[str, Any], **kw: Any) -> httpx.Response:
        payload = {
            "team": {"id": self.team_id, "domain": "fake"},
            "api_app_id": "A0APP",
            "token": "legacy",
            **payload,
        }
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        return self.post(body, "application/x-www-form-urlencoded", **kw)

    def redeliver(
        self,
        event: dict[str, Any],
        *,
        times: int = 3,
        event_id: str | None = None,
        reason: str = "http_timeout",
    ) -> list[httpx.Response]:
        """Slack's redelivery: the same envelope (same `event_id`) `times` times, the retries
        carrying `X-Slack-Retry-Num` (1, 2 …) and `X-Slack-Retry-Reason`, as Slack sends an
        event again when the first delivery failed or took more than 3 s."""
        body = json.dumps(self._envelope(event, event_id))
        replies = [self.post(body, "application/json")]
        for n in range(1, times):
            retry = {"X-Slack-Retry-Num": str(n), "X-Slack-Retry-Reason": reason}
            replies.append(self.post(body, "application/json", headers=retry))
        return replies

    def _envelope(self, event: dict[str, Any], event_id: str | None) -> dict[str, Any]:
        return {
            "token": "legacy",
            "team_id": self.team_id,
            "api_app_id": "A0APP",
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._events):08d}",
            "event_time": int(time.time()),
            "event": event,
            "authorizations": [{"team_id": self.team_id, "user_id": BOT_USER_ID, "is_bot": True}],
        }

    def event(
        self, event: dict[str, Any], *, event_id: str | None = None, **kw: Any
    ) -> httpx.Response:
        envelope = {
            "token": "legacy",
            "team_id": self.team_id,
            "api_app_id": "A0APP",
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._events):08d}",
            "event_time": int(time.time()),
            "event": event,
            "authorizations": [{"team_id": self.team_id, "user_id": BOT_USER_ID, "is_bot": True}],
        }
        return self.post(json.dumps(envelope), "application/json", **kw)
