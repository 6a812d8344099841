"""CSV files dropped in a card's thread: fetched with the bot token, imported, answered there.

`ingest_file` is an RQ job (ids only). It runs once per Slack file id: the listener drops
redelivered events, and an Import row with the file id means the file was already handled.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

import httpx
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bot.actors import slack_user
from bot.slack import card_messages, notifications
from bot.slack.blocks.kit import escape, mention
from bot.slack.blocks.messages import import_summary
from bot.slack.client import make_client
from broadcasts.db import transaction
from broadcasts.errors import BroadcastBotError
from broadcasts.imports import import_csv
from broadcasts.lifecycle import EDITABLE
from broadcasts.models import Import
from jobs.runtime import current

log = logging.getLogger(__name__)

CSV_TYPES = (
    "text/csv",
    "application/csv",
    "text/comma-separated-values",
    "application/vnd.ms-excel",
)
CHUNK = 64 * 1024
# Where Slack serves private files (commercial and GovSlack); the bot token goes nowhere else.
SLACK_FILE_HOSTS = frozenset({"files.slack.com", "files.slack-gov.com"})


class DownloadError(BroadcastBotError):
    """The file could not be fetched from Slack."""


@dataclass(frozen=True)
class SlackFile:
    id: str
    name: str
    mimetype: str
    filetype: str
    size: int
    url: str

    @classmethod
    def parse(cls, data: dict[str, Any]) -> SlackFile:
        return cls(
            id=str(data.get("id", "")),
            name=str(data.get("name") or data.get("title") or "file"),
            mimetype=str(data.get("mimetype") or ""),
            filetype=str(data.get("filetype") or ""),
            size=int(data.get("size") or 0),
            url=str(data.get("url_private_download") or data.get("url_private") or ""),
        )

    @property
    def is_csv(self) -> bool:
        return (
            self.filetype.lower() == "csv"
            or self.name.lower().endswith(".csv")
            or self.mimetype.lower() in CSV_TYPES[:3]
        )


def ingest_file(file_id: str, user_id: str, channel_id: str, thread_ts: str) -> None:
    runtime = current()
    settings = runtime.settings
    with transaction(runtime.sessions) as session:
        broadcast = card_messages.for_thread(session, channel_id, thread_ts)
        if broadcast is None:
            return  # a file in some other thread: not ours
        done = session.scalar(select(Import.id).where(Import.source_file_id == file_id))
        name, status, broadcast_id = broadcast.name, broadcast.status, broadcast.id
    if done is not None:
        return
    client = make_client(settings)

    def say(text: str) -> None:
        card_messages.post_in_thread(client, channel_id, thread_ts, text)

    try:
        file = SlackFile.parse(client.files_info(file=file_id)["file"])
    except SlackApiError as exc:
        say(
            f"I could not read that file from Slack ({exc.response.get('error')}); "
            "try uploading it again."
        )
        return
    shown = escape(file.name)
    if not file.is_csv:
        say(
            f"`{shown}` is not a CSV file, so I left it alone. Export the sheet as "
            "*CSV (UTF-8)* and drop that file here."
        )
        return
    if status not in EDITABLE:
        say(
            f"{mention(user_id)} broadcast *{escape(name)}* is {status}; recipients can no longer "
            f"be added, so I did not import `{shown}`. Create a new broadcast for them."
        )
        return
    limit = settings.csv_max_bytes
    if file.size > limit:
        say(
            f"`{shown}` is {_mb(file.size)}; the limit is {_mb(limit)}. "
            "Split it into smaller files."
        )
        return
    say(f"⏳ Importing `{shown}`…")
    try:
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
            download(file, settings.slack_bot_token or "", spool, limit, settings.slack_api_url)
            spool.seek(0)
            summary = import_csv(
                runtime.sessions,
                broadcast_id,
                spool,  # type: ignore[arg-type]
                filename=file.name,
                region=settings.phone_default_region,
                by=slack_user(user_id),
                source_file_id=file_id,
                max_bytes=limit,
            )
    except BroadcastBotError as exc:
        say(f"❌ `{shown}` was not imported: {escape(exc)}")
        notifications.show_changes(current(), broadcast_id)
        return
    say(import_summary(summary.as_dict(), file.name, mention(user_id)))
    if summary.error_report_csv and summary.rejected:
        try:
            client.files_upload_v2(
                channel=channel_id,
                thread_ts=thread_ts,
                filename=f"{file.name.rsplit('.', 1)[0]}_errors.csv",
                content=summary.error_report_csv,
                title=f"Rows of {file.name} that were not imported",
            )
        except SlackApiError as exc:
            say(f"I could not upload the error report ({exc.response.get('error')}).")
    notifications.show_changes(current(), broadcast_id)


def token_may_go_to(url: str, api_url: str) -> bool:
    """Whether the bot token may be sent to `url`: Slack's file hosts over https, or the host of
    the configured Web API (SLACK_API_URL, a local fake Slack in tests)."""
    try:
        target, api = urlsplit(url), urlsplit(api_url)
        port, api_port = target.port, api.port
    except ValueError:
        return False
    if target.username or target.password:
        return False
    host = (target.hostname or "").lower()
    if target.scheme == "https" and host in SLACK_FILE_HOSTS and port in (None, 443):
        return True
    return (target.scheme, host, port) == (api.scheme, (api.hostname or "").lower(), api_port)


def download(file: SlackFile, token: str, target: IO[bytes], limit: int, api_url: str) -> int:
    """Stream the file into `target` with the bot token; never follows redirects, and never
    sends the token anywhere but Slack."""
    if not file.url:
        raise DownloadError(f"Slack gave no download address for `{file.name}`.")
    if not token_may_go_to(file.url, api_url):
        host = urlsplit(file.url).hostname or "?"
        log.warning("refused to download file %s from %s: not a Slack file host", file.id, host)
        raise DownloadError(
            f"its download address is not on Slack's file servers ({host}), and I only "
            "send the bot's token to Slack. Upload the CSV file itself to this thread."
        )
    headers = {"Authorization": f"Bearer {token}"}
    written = 0
    try:
        with httpx.stream(
            "GET", file.url, headers=headers, follow_redirects=False, timeout=60
        ) as r:
            if r.is_redirect or "text/html" in r.headers.get("content-type", ""):
                raise DownloadError(
                    f"Slack answered with a sign-in page instead of `{file.name}`: the app lacks "
                    "the files:read scope. Reinstall it from manifest.yml, then drop the file "
                    "again."
                )
            if r.status_code != 200:
                raise DownloadError(f"Slack answered {r.status_code} when I fetched `{file.name}`.")
            for chunk in r.iter_bytes(CHUNK):
                written += len(chunk)
                if written > limit:
                    raise DownloadError(f"`{file.name}` is larger than the {_mb(limit)} limit.")
                target.write(chunk)
    except httpx.HTTPError as exc:
        raise DownloadError(
            f"Downloading `{file.name}` from Slack failed ({type(exc).__name__})."
        ) from None
    return written


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"
