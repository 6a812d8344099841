"""Operational counters shared by every process (web and workers, on any machine) through Redis.

Hot paths only add to an in-memory tally (no I/O, never raises); a background thread adds the
tally to Redis hashes about once a second in one pipeline. Sent messages also go into per-second
buckets per phone number, from which /metrics derives the current send rate.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from collections import Counter as CountOf
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from redis import Redis

from broadcasts.sending import Outcome, OutcomeKind
from jobs import keys
from jobs.limiter import RateLimiter

log = logging.getLogger(__name__)

RATE_WINDOW_SECONDS = 5
RATE_LAG_SECONDS = 2  # the newest seconds may still sit in some process's tally
BUCKET_TTL_SECONDS = 60
RATE_NUMBER_FORGET_SECONDS = 3600
FLUSH_SECONDS = 1.0


@dataclass(frozen=True)
class Counter:
    help: str
    labels: tuple[str, ...]


# Exposed as broadcast_<name>_total.
COUNTERS: dict[str, Counter] = {
    "messages_sent": Counter("Messages WhatsApp accepted.", ("phone_number_id",)),
    "messages_failed": Counter("Messages that failed for good, by error code.", ("code",)),
    "messages_retried": Counter("Sends put back for a retry, by error code.", ("code",)),
    "messages_throttled": Counter(
        "Rate-limit answers (130429 or HTTP 429) per number.", ("phone_number_id",)
    ),
    "limiter_wait_seconds": Counter(
        "Seconds sending lanes waited for a send slot of the rate limiter.", ("phone_number_id",)
    ),
    "webhook_events": Counter(
        "WhatsApp webhook POSTs by source, result (accepted or rejected) and HTTP status.",
        ("source", "result", "status"),
    ),
    "webhook_duplicates": Counter(
        "Accepted webhook bodies that were already stored (redeliveries).", ()
    ),
    "slack_api_errors": Counter("Slack Web API calls that failed.", ("method", "error")),
}


Labels = tuple[tuple[str, str], ...]


def _labels(labels: Mapping[str, str] | None) -> Labels:
    return tuple(sorted(labels.items())) if labels else ()


def _field(labels: Labels) -> str:
    return json.dumps(labels, separators=(",", ":"))


class Meter:
    """This process's tally, added to Redis by a background thread (or `flush()`)."""

    def __init__(self, redis: Redis[bytes], *, background: bool = True) -> None:
        self._redis = redis
        self._background = background
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._counts: defaultdict[tuple[str, Labels], float] = defaultdict(float)
        self._sent: defaultdict[tuple[str, int], int] = defaultdict(int)
        self._pid: int | None = None
        self._stop = threading.Event()

    # -- the hot side: memory only --------------------------------------------------------

    def count(self, name: str, labels: Mapping[str, str] | None = None, n: float = 1) -> None:
        key = (name, _labels(labels))
        with self._lock:
            self._counts[key] += n
        self._ensure_flusher()

    def sent(self, phone_number_id: str, n: int, *, second: int | None = None) -> None:
        """`n` messages accepted on the number (in the current second, unless told)."""
        at = int(time.time()) if second is None else second
        with self._lock:
            self._counts[("messages_sent", (("phone_number_id", phone_number_id),))] += n
            self._sent[(phone_number_id, at)] += n
        self._ensure_flusher()

    # -- the background side ------------------------------------------------------------------

    def flush(self) -> bool:
        """Add the tally to Redis in one pipeline; on failure keep it for the next try."""
        with self._flushing:  # a caller's flush also waits for one in flight
            return self._flush()

    def _flush(self) -> bool:
        with self._lock:
            counts, self._counts = self._counts, defaultdict(float)
            sent, self._sent = self._sent, defaultdict(int)
        if not counts and not sent:
            return True
        try:
            pipe = self._redis.pipeline(transaction=False)
            for (name, labels), n in counts.items():
                if float(n).is_integer():
                    pipe.hincrby(keys.telemetry_counter(name), _field(labels), int(n))
                else:
                    pipe.hincrbyfloat(keys.telemetry_counter(name), _field(labels), n)
            for (number, second), n in sent.items():
                pipe.incrby(keys.telemetry_sent_bucket(number, second), n)
                pipe.expire(keys.telemetry_sent_bucket(number, second), BUCKET_TTL_SECONDS)
            if sent:
                pipe.zadd(keys.TELEMETRY_RATE_NUMBERS, {number: second for number, second in sent})
            pipe.execute()
        except Exception as exc:  # metrics must never hurt the work they measure
            log.debug("telemetry not written (%s); kept for the next flush", exc)
            with self._lock:
                for key, n in counts.items():
                    self._counts[key] += n  # rate buckets are only worth it while fresh
            return False
        return True

    def _ensure_flusher(self) -> None:
        if not self._background or self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()  # a forked child starts its own thread
        threading.Thread(target=self._loop, name="telemetry", daemon=True).start()

    def _loop(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self.flush()


_meters: dict[str, Meter] = {}
_meters_lock = threading.Lock()


def meter_for(redis_url: str) -> Meter:
    """The process's meter for a Redis (its own connection, with short timeouts)."""
    with _meters_lock:
        meter = _meters.get(redis_url)
        if meter is None:
            redis = Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
            meter = _meters[redis_url] = Meter(redis)
        return meter


@atexit.register
def _flush_all() -> None:
    for meter in list(_meters.values()):
        meter.close()


class SendMeter:
    """A sending lane's view: counts each recorded group of outcomes and the limiter's waits."""

    def __init__(self, meter: Meter, phone_number_id: str, limiter: RateLimiter) -> None:
        self.meter = meter
        self.phone_number_id = phone_number_id
        self.limiter = limiter
        self._waited = 0.0

    def record(self, outcomes: Iterable[Outcome]) -> None:
        kinds: CountOf[tuple[str, int | None]] = CountOf()
        sent = throttled = 0
        for o in outcomes:
            if o.kind == OutcomeKind.SENT:
                sent += 1
            elif o.kind in (OutcomeKind.FAILED, OutcomeKind.RETRY):
                kinds[(o.kind, o.code)] += 1
                throttled += o.throttled  # decided by the lane's error policy (jobs/lane_errors.py)
        number = {"phone_number_id": self.phone_number_id}
        for (kind, code), n in kinds.items():
            name = "messages_failed" if kind == OutcomeKind.FAILED else "messages_retried"
            self.meter.count(name, {"code": str(code or "none")}, n)
        if throttled:
            self.meter.count("messages_throttled", number, throttled)
        if sent:
            self.meter.sent(self.phone_number_id, sent)
        waited = self.limiter.waited_seconds
        if waited > self._waited:
            self.meter.count("limiter_wait_seconds", number, waited - self._waited)
            self._waited = waited


# -- the reading side (/metrics) -------------------------------------------------------------


def read_counters(redis: Redis[bytes]) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every counter's labelled values, summed over all processes."""
    pipe = redis.pipeline(transaction=False)
    for name in COUNTERS:
        pipe.hgetall(keys.telemetry_counter(name))
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for name, values in zip(COUNTERS, pipe.execute(), strict=True):
        rows = []
        for field, value in values.items():
            try:
                labels = {str(k): str(v) for k, v in json.loads(field)}
            except (ValueError, TypeError):
                continue
            rows.append((labels, float(value)))
        out[name] = sorted(rows, key=lambda row: sorted(row[0].items()))
    return out


def send_rates(redis: Redis[bytes]) -> dict[str, float]:
    """Messages/s per phone number over the last complete seconds (Redis server clock)."""
    now = int(redis.time()[0])
    redis.zremrangebyscore(keys.TELEMETRY_RATE_NUMBERS, 0, now - RATE_NUMBER_FORGET_SECONDS)
    numbers = [n.decode() for n in redis.zrange(keys.TELEMETRY_RATE_NUMBERS, 0, -1)]
    if not numbers:
        return {}
    last = now - RATE_LAG_SECONDS
    seconds = range(last - RATE_WINDOW_SECONDS + 1, last + 1)
    pipe = redis.pipeline(transaction=False)
    for number in numbers:
        pipe.mget([keys.telemetry_sent_bucket(number, s) for s in seconds])
    rates = {}
    for number, values in zip(numbers, pipe.execute(), strict=True):
        rates[number] = sum(int(v) for v in values if v is not None) / RATE_WINDOW_SECONDS
    return rates
