"""What the sandbox remembers: templates per WABA, accepted messages, rate windows, stats."""

from __future__ import annotations

import copy
import json
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from kapso.sandbox.config import SandboxConfig

# Webhook events remembered for /_sandbox/webhooks (the oldest are forgotten beyond this).
WEBHOOK_LOG_MAX = 200_000


def builtin_templates() -> list[dict[str, Any]]:
    text = resources.files("kapso.sandbox").joinpath("templates.json").read_text("utf-8")
    data: list[dict[str, Any]] = json.loads(text)
    return data


@dataclass
class Window:
    """Arrival times in the last second, and the most ever seen in one second."""

    times: deque[float] = field(default_factory=deque)
    peak: int = 0

    def add(self, now: float) -> int:
        """Count `now` in; return how many arrived in the second before it (itself excluded)."""
        while self.times and self.times[0] <= now - 1.0:
            self.times.popleft()
        before = len(self.times)
        self.times.append(now)
        self.peak = max(self.peak, len(self.times))
        return before


class SandboxState:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        self.key_revoked = False
        self.templates: dict[str, list[dict[str, Any]]] = {}
        self.messages: list[dict[str, Any]] = []
        self.requests: dict[str, Window] = {}
        self.accepted_windows: dict[str, Window] = {}
        self.last_to: dict[tuple[str, str], float] = {}
        self.codes: Counter[int | str] = Counter()
        self.users: dict[str, str] = {}  # business-scoped user id → the number behind it
        self.webhooks_posted = 0
        self.webhook_events = 0
        self.webhook_failures = 0
        self.started = time.time()
        self.sequence = 0
        # When each webhook event was first posted and acknowledged, for latency measurements.
        self.webhook_log: deque[dict[str, Any]] = deque(maxlen=WEBHOOK_LOG_MAX)

    def templates_of(self, waba_id: str) -> list[dict[str, Any]]:
        if waba_id not in self.templates:
            source = self.config.templates_by_waba.get(waba_id)
            self.templates[waba_id] = copy.deepcopy(
                builtin_templates() if source is None else source
            )
        return self.templates[waba_id]

    def find_template(self, waba_id: str, name: str, language: str) -> dict[str, Any] | None:
        for template in self.templates_of(waba_id):
            if template.get("name") == name and template.get("language") == language:
                return template
        return None

    def arrive(self, phone_number_id: str, now: float) -> bool:
        """Count a send request; False when the number's 1-second window is already full."""
        window = self.requests.setdefault(phone_number_id, Window())
        return window.add(now) < self.config.throughput_for(phone_number_id)

    def accept(self, phone_number_id: str, record: dict[str, Any], now: float) -> None:
        self.accepted_windows.setdefault(phone_number_id, Window()).add(now)
        self.last_to[(phone_number_id, record["to"])] = now
        self.messages.append(record)

    def log_webhook(
        self,
        refs: list[tuple[str, str, str | None]],
        emitted_at: float,
        acked_at: float | None,
        attempts: int,
    ) -> None:
        """Remember the events of one webhook POST: kind, id (wamid, inbound message id or
        template name), status, when it was first posted and when a 2xx came back (None: never)."""
        for kind, ref_id, status in refs:
            self.webhook_log.append(
                {
                    "kind": kind,
                    "id": ref_id,
                    "status": status,
                    "emitted_at": emitted_at,
                    "acked_at": acked_at,
                    "attempts": attempts,
                }
            )

    def next_wamid(self) -> str:
        self.sequence += 1
        return f"wamid.SBX{self.sequence:010d}{int(self.started) % 100000:05d}"

    def stats(self) -> dict[str, Any]:
        return {
            "accepted": len(self.messages),
            "rejected": sum(self.codes.values()),
            "throughput_rejections": self.codes.get(130429, 0),
            "pair_rate_rejections": self.codes.get(131056, 0),
            "codes": {str(k): v for k, v in sorted(self.codes.items(), key=lambda kv: str(kv[0]))},
            "max_accepted_per_second": {k: w.peak for k, w in self.accepted_windows.items()},
            "max_requests_per_second": {k: w.peak for k, w in self.requests.items()},
            "webhooks_posted": self.webhooks_posted,
            "webhook_events": self.webhook_events,
            "webhook_failures": self.webhook_failures,
            "api_key_revoked": self.key_revoked,
        }
