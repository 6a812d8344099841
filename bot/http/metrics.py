"""GET /metrics in Prometheus text format, and the webhook counter around the app.

Counters come from Redis (every process adds to them, see jobs.telemetry), queue depths from RQ,
broadcast and backlog gauges from the database. A component that cannot be read is reported as
`broadcast_up{component=…} 0` instead of failing the scrape.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from datetime import timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from rq import Queue, Worker
from sqlalchemy import func, or_, select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broadcasts.enums import BroadcastStatus, DeliveryStatus
from broadcasts.lifecycle import ACTIVE
from broadcasts.metrics import COUNTER_COLUMNS, RATES, stored_counts
from broadcasts.models import AgentDelivery, Broadcast, InboxEvent, utcnow
from jobs.queues import ALL
from jobs.runtime import Runtime
from jobs.telemetry import COUNTERS, meter_for, read_counters, send_rates

log = logging.getLogger(__name__)

WEBHOOK_SOURCES = {"/webhooks/whatsapp": "meta", "/webhooks/kapso": "kapso"}
UNDER_WAY = (BroadcastStatus.SCHEDULED, *ACTIVE)
# Per-broadcast series: active broadcasts and those finished this recently, newest first, capped
# so the scrape stays small whatever the history.
RECENT = timedelta(days=7)
MAX_BROADCAST_SERIES = 100


class BroadcastCollector(Collector):
    """Builds every metric family at scrape time."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "broadcast_up",
            "Whether /metrics could read the component (1) or not (0).",
            labels=["component"],
        )
        try:
            yield from self._redis_metrics()
            up.add_metric(["redis"], 1)
        except Exception as exc:
            log.warning("metrics: Redis not readable (%s)", exc)
            up.add_metric(["redis"], 0)
        try:
            yield from self._database_metrics()
            up.add_metric(["database"], 1)
        except Exception as exc:
            log.warning("metrics: database not readable (%s)", exc)
            up.add_metric(["database"], 0)
        yield up

    def _redis_metrics(self) -> Iterator[Metric]:
        redis = self.runtime.redis
        families: list[Metric] = []
        for name, values in read_counters(redis).items():
            spec = COUNTERS[name]
            family = CounterMetricFamily(f"broadcast_{name}", spec.help, labels=list(spec.labels))
            for labels, value in values:
                family.add_metric([labels.get(label, "") for label in spec.labels], value)
            families.append(family)
        rate = GaugeMetricFamily(
            "broadcast_send_rate",
            "Messages per second accepted per number, averaged over 5 s ending 2 s ago.",
            labels=["phone_number_id"],
        )
        for number, value in sorted(send_rates(redis).items()):
            rate.add_metric([number], value)
        depth = GaugeMetricFamily(
            "broadcast_queue_depth", "Jobs waiting per RQ queue.", labels=["queue"]
        )
        scheduled = GaugeMetricFamily(
            "broadcast_queue_scheduled_jobs",
            "Jobs scheduled for later per RQ queue.",
            labels=["queue"],
        )
        failed = GaugeMetricFamily(
            "broadcast_queue_failed_jobs",
            "Jobs in the failed registry per RQ queue.",
            labels=["queue"],
        )
        for name in ALL:
            queue = Queue(name, connection=redis)
            depth.add_metric([name], queue.count)
            scheduled.add_metric([name], queue.scheduled_job_registry.count)
            failed.add_metric([name], queue.failed_job_registry.count)
        workers = GaugeMetricFamily(
            "broadcast_workers", "RQ workers alive.", value=Worker.count(connection=redis)
        )
        yield from [*families, rate, depth, scheduled, failed, workers]

    def _database_metrics(self) -> Iterator[Metric]:
        with self.runtime.sessions() as session:
            by_status = dict(
                session.execute(
                    select(Broadcast.status, func.count()).group_by(Broadcast.status)
                ).all()
            )
            pending = session.scalar(
                select(func.coalesce(func.sum(Broadcast.pending_count), 0)).where(
                    Broadcast.status.in_(UNDER_WAY)
                )
            )
            inbox = session.scalar(select(func.count()).where(InboxEvent.processed_at.is_(None)))
            deliveries = session.scalar(
                select(func.count()).where(AgentDelivery.status == DeliveryStatus.PENDING)
            )
            recent = list(
                session.scalars(
                    select(Broadcast)
                    .where(
                        or_(
                            Broadcast.status.in_(UNDER_WAY),
                            Broadcast.finished_at >= utcnow() - RECENT,
                        )
                    )
                    .order_by(Broadcast.created_at.desc())
                    .limit(MAX_BROADCAST_SERIES)
                )
            )
            per_broadcast = [(b.id, b.name, stored_counts(b)) for b in recent]
        broadcasts = GaugeMetricFamily(
            "broadcast_broadcasts", "Broadcasts by status.", labels=["status"]
        )
        for status in BroadcastStatus:
            broadcasts.add_metric([str(status)], by_status.get(str(status), 0))
        yield broadcasts
        recipients = GaugeMetricFamily(
            "broadcast_recipients",
            "Recipients of an active or recently finished broadcast, by metric (seed's table).",
            labels=["broadcast_id", "broadcast_name", "metric"],
        )
        rates = GaugeMetricFamily(
            "broadcast_rate",
            "Rates of an active or recently finished broadcast: response_rate = responded ÷ "
            "total recipients; delivery_rate = delivered ÷ sent; read_rate = read ÷ delivered; "
            "reply_rate_of_delivered = responded ÷ delivered.",
            labels=["broadcast_id", "broadcast_name", "rate"],
        )
        for broadcast_id, name, counts in per_broadcast:
            for metric in COUNTER_COLUMNS:
                recipients.add_metric([broadcast_id, name, metric], getattr(counts, metric))
            for key, _, _ in RATES:
                rates.add_metric([broadcast_id, name, key], getattr(counts, key))
        yield recipients
        yield rates
        yield GaugeMetricFamily(
            "broadcast_recipients_pending",
            "Recipients still to send in scheduled, sending and paused broadcasts.",
            value=int(pending or 0),
        )
        yield GaugeMetricFamily(
            "broadcast_webhook_inbox_backlog",
            "Stored webhook bodies not processed yet.",
            value=int(inbox or 0),
        )
        yield GaugeMetricFamily(
            "broadcast_agent_deliveries_pending",
            "Replies not yet delivered to their agent.",
            value=int(deliveries or 0),
        )


def render(runtime: Runtime) -> bytes:
    """The Prometheus text exposition of everything above (blocking: Redis and database)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BroadcastCollector(runtime))
    return generate_latest(registry)


class MetricsEndpoint:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def get(self, request: Request) -> Response:
        token = self.runtime.settings.metrics_token
        if token:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), token.encode()):
                return PlainTextResponse(
                    "metrics need the METRICS_TOKEN bearer token", status_code=401
                )
        body = await run_in_threadpool(render, self.runtime)
        return Response(body, media_type=CONTENT_TYPE_LATEST)


class WebhookCounter:
    """ASGI middleware counting webhook POSTs by source and result, from the response status."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        source = WEBHOOK_SOURCES.get(scope.get("path", "")) if scope["type"] == "http" else None
        if source is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        counted = False

        async def send_and_count(message: Message) -> None:
            nonlocal counted
            if message["type"] == "http.response.start" and not counted:
                counted = True
                self._count(source, int(message["status"]))
            await send(message)

        try:
            await self.app(scope, receive, send_and_count)
        except Exception:
            if not counted:
                self._count(source, 500)
            raise

    def _count(self, source: str, status: int) -> None:
        result = "accepted" if status < 300 else "rejected"
        labels = {"source": source, "result": result, "status": str(status)}
        meter_for(self.runtime.settings.redis_url).count("webhook_events", labels)


def install(app: Starlette, runtime: Runtime) -> None:
    """Add GET /metrics to the app (bot.http.webhook_routes wraps each webhook POST in
    WebhookCounter)."""
    app.router.routes.append(Route("/metrics", MetricsEndpoint(runtime).get, methods=["GET"]))
