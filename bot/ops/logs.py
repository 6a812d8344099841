"""Logging for every process: text or JSON lines, with phone numbers and secrets masked."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import IO, Any

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from broadcasts.errors import BroadcastBotError
from jobs.settings import Settings

SECRET_NAME = re.compile(r"(^|_)(token|secret|key|password|credential)s?(_|$)", re.IGNORECASE)
MIN_SECRET_LENGTH = 6
QUIET_LIBRARIES = ("httpx", "httpcore", "urllib3", "slack_sdk", "aiohttp.access")
# Bolt logs a refused request's whole body at INFO; our route logs the refusal briefly instead.
BODY_LOGGERS = ("slack_bolt.RequestVerification", "slack_bolt.AsyncRequestVerification")

# Token shapes that are secret wherever they appear, whoever configured them; each pattern runs
# only when one of its (lower-case) marker strings is in the text, which keeps logging cheap.
_TOKEN_PATTERNS = (
    (("xox", "xapp"), re.compile(r"\b(xox[abposre]|xapp)-[A-Za-z0-9-]+"), r"\1-***"),
    (
        ("bearer", "basic"),
        re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE),
        r"\1 ***",
    ),
    (("eaa",), re.compile(r"\bEAA[A-Za-z0-9]{20,}"), "EAA***"),
    (
        ("://",),
        re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@", re.IGNORECASE),
        r"\1***@",
    ),
)
# E.164 numbers, and bare digit runs as long as a number with its country code (wa_id).
# (Phone number ids, 15-16 digits, and epoch seconds, 10, stay readable.)
_PHONE = re.compile(r"(?<![\w+])\+\d{7,15}(?!\d)|(?<![\w.+-])\d{11,13}(?![\w.])")
_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "color_message"}  # uvicorn's copy of the message with ANSI colours
)


def mask_phone(digits: str, plus: str = "+") -> str:
    """+447400123456 → +44••••••••56: the country code and the last two digits stay readable."""
    cc = next((digits[:n] for n in (1, 2, 3) if int(digits[:n]) in COUNTRY_CODE_TO_REGION_CODE), "")
    hidden = max(0, len(digits) - len(cc) - 2)
    return f"{plus}{cc}{'•' * hidden}{digits[len(cc) + hidden :]}"


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    return mask_phone(text[1:]) if text.startswith("+") else mask_phone(text, "")


def secret_values(settings: Settings | None, environ: Mapping[str, str]) -> set[str]:
    """Values of the settings' secret fields and of secret-looking environment variables."""
    values: set[str] = set()
    if settings is not None:
        for name in type(settings).model_fields:
            value = getattr(settings, name)
            if SECRET_NAME.search(name) and isinstance(value, str):
                values.add(value)
    values.update(v for k, v in environ.items() if SECRET_NAME.search(k))
    return {v for v in values if len(v) >= MIN_SECRET_LENGTH}


class BelowWarning(logging.Filter):
    """Drops a library's info and debug records whatever level the library set itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


_BELOW_WARNING = BelowWarning()


class Masker:
    """Replaces secrets with *** and phone numbers with a partly hidden form."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        ordered = sorted(set(secrets), key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub("***", text)
        lowered = text.lower()
        for markers, pattern, replacement in _TOKEN_PATTERNS:
            if any(marker in lowered for marker in markers):
                text = pattern.sub(replacement, text)
        return _PHONE.sub(_phone, text)


class MaskingFilter(logging.Filter):
    """Masks a record's message (with its args merged in) and its string extra fields."""

    def __init__(self, masker: Masker) -> None:
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format: keep what we can, masked
            message = f"{record.msg} {record.args}"
        record.msg, record.args = self.masker(message), None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, self.masker(value))
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message key=value …`; tracebacks masked too."""

    def __init__(self, masker: Masker) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.masker = masker

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_text:  # cached, unmasked, by a handler that formatted it first
            record.exc_text = self.masker(record.exc_text)
        line = super().format(record)  # the message is masked already (MaskingFilter)
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{k}={self.masker(str(v))}" for k, v in extras.items())
        return line

    def formatException(self, ei: Any) -> str:
        return self.masker(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return self.masker(super().formatStack(stack_info))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the extra fields, exc."""

    def __init__(self, masker: Masker) -> None:
        super().__init__()
        self.masker = masker

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            entry.setdefault(key, value if _is_plain(value) else self.masker(str(value)))
        if record.exc_info:
            entry["exc"] = self.masker(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = self.masker(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def _is_plain(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


class _BotHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler `configure_logging` installed, so a second call replaces it."""


class _StderrHandler(_BotHandler):
    """Writes to whatever sys.stderr is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


PROCESS_COMMANDS = frozenset({"web", "worker", "socket", "sandbox"})


def configure_for_command(
    load: Callable[[], Settings], *, verbose: bool, command: str | None
) -> None:
    """The CLI's logging: LOG_LEVEL for the long-running processes (or when set explicitly),
    warnings only for one-off operator commands, everything with -v."""
    try:
        settings: Settings | None = load()
    except BroadcastBotError:  # the command reports it (`doctor` explains it)
        settings = None
    level: str | int | None = None
    if verbose:
        level = logging.DEBUG
    elif command not in PROCESS_COMMANDS and (
        settings is None or "log_level" not in settings.model_fields_set
    ):
        level = logging.WARNING
    configure_logging(settings, level=level)


def ensure_configured(settings: Settings) -> None:
    """Configure logging unless this process already is (uvicorn's worker processes are fresh)."""
    if not any(isinstance(h, _BotHandler) for h in logging.getLogger().handlers):
        configure_logging(settings)


def configure_logging(
    settings: Settings | None,
    *,
    level: str | int | None = None,
    stream: IO[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Send every logger's records to stderr (or `stream`) as LOG_FORMAT says, masked."""
    masker = Masker(secret_values(settings, os.environ if environ is None else environ))
    handler = _BotHandler(stream) if stream is not None else _StderrHandler()
    as_json = settings is not None and settings.log_format == "json"
    handler.setFormatter(JsonFormatter(masker) if as_json else TextFormatter(masker))
    handler.addFilter(MaskingFilter(masker))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _BotHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    chosen = level if level is not None else (settings.log_level if settings else "INFO")
    root.setLevel(chosen.upper() if isinstance(chosen, str) else chosen)
    library_level = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(library_level)
    for name in BODY_LOGGERS:  # a filter, not a level: Bolt resets its loggers' levels
        logging.getLogger(name).addFilter(_BELOW_WARNING)
    return handler
