"""Everything the sandbox can be told: latency, limits, failure rules, webhooks, replies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kapso.settings import SANDBOX_API_KEY

DEFAULT_PHONE_NUMBER_ID = "100200300"
DEFAULT_WABA_ID = "900800700"
DEFAULT_DISPLAY_NUMBER = "+1 555-010-0300"
API_VERSION = "v24.0"


@dataclass
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port (in-process runs); the CLI defaults to 8081
    api_key: str = SANDBOX_API_KEY
    latency_ms: float = 150.0
    latency_jitter: float = 0.2  # each response waits latency_ms × U(1 - j, 1 + j)
    # Throughput: send requests per phone number in any sliding 1-second window.
    throughput: int = 80
    throughput_per_number: dict[str, int] = field(default_factory=dict)
    # The messaging limit tier the phone number reports (TIER_250 … TIER_UNLIMITED).
    messaging_limit: str = "TIER_10K"
    messaging_limit_per_number: dict[str, str] = field(default_factory=dict)
    pair_rate: bool = True
    pair_rate_seconds: float = 6.0
    # Which WABA a phone number belongs to (others: the default WABA), and the templates of
    # WABAs that are not the built-in set (an empty list: a WABA with no templates).
    numbers: dict[str, str] = field(default_factory=dict)
    templates_by_waba: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    templates_page_max: int = 100
    contacts: int = 30  # contacts seeded in Kapso's contact list per number
    # Recipient rules, by the last digits of the number.
    failure_rules: dict[str, int] = field(
        default_factory=lambda: {"026": 131026, "049": 131049, "050": 131050}
    )  # accepted, then a `failed` status webhook with that code
    # Refused at send time: a Meta code, or a Kapso one such as "marketing_preference_stopped";
    # the suffix "" matches every number (an account-level error).
    reject_rules: dict[str, int | str] = field(default_factory=dict)
    # Webhooks
    webhook_url: str | None = None
    webhook_format: str = "meta"  # meta | kapso
    app_secret: str = "sandbox-app-secret"  # noqa: S105 (a local simulator's test secret)
    kapso_secret: str = "sandbox-kapso-secret"  # noqa: S105
    display_phone_number: str = DEFAULT_DISPLAY_NUMBER
    speed: float = 1.0  # status and reply delays are divided by this
    read_rate: float = 0.7
    reply_rate: float = 0.1
    button_reply_share: float = 0.5  # of replies, taps on a quick-reply button when there is one
    media_reply_share: float = 0.0  # of replies, an image with a caption
    reaction_share: float = 0.0  # of replies, an emoji reaction to the template (not an answer)
    # Users who hide their number behind a username, by the last digits of the number: their
    # replies and statuses carry only the business-scoped user id (no `from` / `recipient_id`).
    hidden_number_rules: list[str] = field(default_factory=list)
    quote_rate: float = 0.5  # of text replies, those quoting the template (context.id)
    duplicate_rate: float = 0.05
    out_of_order_rate: float = 0.05
    batch_max: int = 100  # status updates per webhook POST
    batch_interval_ms: float = 200.0
    webhook_retries: int = 5
    seed: int = 1234

    def throughput_for(self, phone_number_id: str) -> int:
        return self.throughput_per_number.get(phone_number_id, self.throughput)

    def messaging_limit_for(self, phone_number_id: str) -> str:
        return self.messaging_limit_per_number.get(phone_number_id, self.messaging_limit)

    def waba_for(self, phone_number_id: str) -> str:
        return self.numbers.get(phone_number_id, DEFAULT_WABA_ID)
