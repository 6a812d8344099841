"""A local WhatsApp Cloud API (and Kapso proxy) for tests, benchmarks and the demo.

Endpoints (any `vNN.N` version, any ids; phone number 100200300 and WABA 900800700 by default):
``POST /{v}/{phone_number_id}/messages`` (templates, and text messages),
``GET /{v}/{waba_id}/message_templates`` (``limit``, ``after``; ``paging.next`` while more),
``GET /{v}/{phone_number_id}?fields=throughput,whatsapp_business_manager_messaging_limit``
(``throughput`` → level: 80 STANDARD, ≥1,000 HIGH, 20 COEXISTENCE, any other rate as its number;
``messaging_limit``/``messaging_limit_per_number`` → the tier, TIER_10K by default),
``GET /{v}/{phone_number_id}/contacts``
(Kapso's contact list, cursor-paginated), with Meta's JSON and error shapes. Admin, no auth:
``GET /_sandbox/messages|stats|webhooks``,
``POST /_sandbox/templates/status|api-key|reset|settings|inbound``.

Rules, in the order a send meets them:

1. Auth: ``X-API-Key`` or ``Authorization: Bearer`` must equal ``api_key`` → else 190 (HTTP 401);
   a revoked key → 190.
2. Throughput: every authenticated send request to a phone number is counted at arrival in a
   sliding 1-second window, refused ones included. A request finding ``throughput`` (per number:
   ``throughput_per_number``) requests already in the preceding second is answered HTTP 400,
   code 130429. So a sender that never starts more than N requests in any one second is never
   refused; one that exceeds it is, strictly.
3. Template: unknown name or language, or not APPROVED → 132001; PAUSED → 132015;
   DISABLED → 132016. Parameters: wrong count → 132000; named templates need a known
   ``parameter_name`` on each → 100; a named parameter on a positional template → 132012;
   an empty value or missing button value → 131008.
4. ``reject_rules`` (number suffix → code) refuse at send time.
5. Pair rate (``pair_rate``): a template sent to a number that got an accepted message less than
   ``pair_rate_seconds`` (6 s) before → 131056. Text messages (conversation replies) are exempt,
   as Meta lets a conversation burst.

Accepted sends answer like Meta (``wa_id`` follows Brazil's and Mexico's rules) and are recorded.
When ``webhook_url`` is set, each gets signed status webhooks (Meta format, or Kapso v2 with
``webhook_format='kapso'``): sent, delivered, read (``read_rate``), or ``failed`` with the code of
a matching ``failure_rules`` suffix (default …026 → 131026, …049 → 131049, …050 → 131050); a
``reply_rate`` share of recipients answer (text, or a quick-reply tap), some quoting the
template's wamid; ``duplicate_rate`` and ``out_of_order_rate`` make them imperfect. Delays are
divided by ``speed``; updates are posted in batches of up to ``batch_max`` or every
``batch_interval_ms``. ``/_sandbox/webhooks`` lists every posted event (``kind`` status, message
or template; ``id`` the wamid, inbound message id or template name; ``status``) with when it was
first posted (``emitted_at``) and acknowledged (``acked_at``, null if never); accepted messages
carry ``arrived_at`` (request arrival) beside ``time`` (acceptance, after the latency).
"""

from kapso.sandbox.config import (
    API_VERSION,
    DEFAULT_PHONE_NUMBER_ID,
    DEFAULT_WABA_ID,
    SandboxConfig,
)
from kapso.sandbox.runner import Sandbox, run_sandbox, serve

__all__ = [
    "API_VERSION",
    "DEFAULT_PHONE_NUMBER_ID",
    "DEFAULT_WABA_ID",
    "Sandbox",
    "SandboxConfig",
    "run_sandbox",
    "serve",
]
