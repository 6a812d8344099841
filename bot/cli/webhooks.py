"""`broadcast-bot webhooks` (Kapso registration, inbox replay) and `agents deliveries`."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import func, select

from bot.cli.agents import group as agents_group
from bot.cli.context import CliContext, json_option, pass_cli
from bot.cli.output import emit_json, emit_table, key_values
from broadcasts.configs import get_config
from broadcasts.enums import DeliveryStatus
from broadcasts.errors import BroadcastBotError, NotFoundError
from broadcasts.models import InboxEvent, utcnow
from jobs import agents, inbox
from jobs.delivery_retries import enqueue_delivery
from kapso.platform import DEFAULT_EVENTS, PlatformError, register_webhook


@click.group("webhooks")
def group() -> None:
    """WhatsApp webhooks: register with Kapso, inspect and replay the inbox."""


@group.command("register-kapso")
@click.option("--config", "config_ref", required=True, help="WhatsApp configuration (its number).")
@click.option(
    "--url", required=True, help="Public URL, e.g. https://bot.example.com/webhooks/kapso"
)
@click.option(
    "--kind",
    type=click.Choice(["kapso", "meta"]),
    default="kapso",
    show_default=True,
    help="kapso: Kapso v2 events; meta: Meta's raw payloads forwarded.",
)
@click.option(
    "--event",
    "events",
    multiple=True,
    help=f"Event to subscribe (repeatable; default: {', '.join(DEFAULT_EVENTS)}).",
)
@json_option
@pass_cli
def register_kapso(
    cli_ctx: CliContext,
    config_ref: str,
    url: str,
    kind: str,
    events: tuple[str, ...],
    as_json: bool,
) -> None:
    """Register URL as the webhook of a configuration's number through Kapso's Platform API."""
    settings = cli_ctx.runtime.settings
    api_key = settings.require("kapso_api_key", "Kapso's Platform API needs the project key")
    secret = settings.require(
        "kapso_webhook_secret", "it is the secret Kapso signs webhooks with, and we verify"
    )
    if not url.startswith(("https://", "http://")):
        raise BroadcastBotError(f"--url '{url}' must start with https://.")
    with cli_ctx.session() as session:
        phone_number_id = get_config(session, config_ref).phone_number_id
    try:
        hook = register_webhook(
            settings.kapso_platform_url,
            api_key,
            phone_number_id=phone_number_id,
            url=url,
            secret=secret,
            events=events or DEFAULT_EVENTS,
            kind=kind,
        )
    except PlatformError as exc:
        raise BroadcastBotError(str(exc)) from None
    if as_json:
        emit_json({"id": hook.id, "url": hook.url, "events": list(hook.events), "kind": hook.kind})
        return
    click.echo(f"Registered Kapso webhook {hook.id} for phone number {phone_number_id}:")
    click.echo(f"  {hook.url} ({hook.kind}; {', '.join(hook.events) or 'Meta payloads'})")


@group.command("replay")
@click.option(
    "--older-than",
    type=float,
    default=0.0,
    show_default=True,
    help="Only bodies received at least this many seconds ago.",
)
@pass_cli
def replay(cli_ctx: CliContext, older_than: float) -> None:
    """Queue again every stored webhook body not processed yet (e.g. after losing Redis), parked
    bodies included (they get their attempts back)."""
    count = inbox.requeue_stale(cli_ctx.runtime, older_than=older_than, replay=True)
    click.echo(f"Queued {count} unprocessed webhook bodies again (and overdue agent deliveries).")


@group.command("status")
@json_option
@pass_cli
def status(cli_ctx: CliContext, as_json: bool) -> None:
    """How many webhook bodies are stored, waiting, or failing."""
    with cli_ctx.session() as session:
        total = session.scalar(select(func.count()).select_from(InboxEvent)) or 0
        waiting = session.scalar(select(func.count()).where(InboxEvent.processed_at.is_(None))) or 0
        failing = (
            session.scalar(
                select(func.count()).where(
                    InboxEvent.processed_at.is_(None), InboxEvent.error.is_not(None)
                )
            )
            or 0
        )
        oldest = session.scalar(
            select(func.min(InboxEvent.received_at)).where(InboxEvent.processed_at.is_(None))
        )
        parked = list(
            session.execute(
                select(InboxEvent.id, InboxEvent.event_type, InboxEvent.error)
                .where(
                    InboxEvent.processed_at.is_(None),
                    InboxEvent.attempts >= cli_ctx.runtime.settings.inbox_max_attempts,
                )
                .order_by(InboxEvent.id.desc())
                .limit(5)
            )
        )
        parked_count = (
            session.scalar(
                select(func.count()).where(
                    InboxEvent.processed_at.is_(None),
                    InboxEvent.attempts >= cli_ctx.runtime.settings.inbox_max_attempts,
                )
            )
            or 0
        )
        last_error = session.scalar(
            select(InboxEvent.error)
            .where(InboxEvent.processed_at.is_(None), InboxEvent.error.is_not(None))
            .order_by(InboxEvent.id.desc())
            .limit(1)
        )
    data = {
        "stored": total,
        "waiting": waiting,
        "failing": failing,
        "oldest_waiting_seconds": round((utcnow() - oldest).total_seconds(), 1) if oldest else None,
        "last_error": last_error,
        # Bodies that failed every attempt: kept with their error until `webhooks replay`.
        "parked": parked_count,
        "parked_bodies": [
            {"id": row.id, "event_type": row.event_type, "error": row.error} for row in parked
        ],
    }
    if as_json:
        emit_json(data)
    else:
        click.echo(
            key_values([(k.replace("_", " "), v) for k, v in data.items() if k != "parked_bodies"])
        )
        for row in parked:
            click.echo(f"  parked #{row.id} ({row.event_type or '?'}): {row.error}")


@click.command("deliveries")
@click.option(
    "--status",
    "status_",
    type=click.Choice([s.value for s in DeliveryStatus]),
    help="Only deliveries in this status.",
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@json_option
@pass_cli
def deliveries(cli_ctx: CliContext, status_: str | None, limit: int, as_json: bool) -> None:
    """Inbound messages handed to agents: attempts, last error, when delivered."""
    with cli_ctx.session() as session:
        rows: list[dict[str, Any]] = [
            {
                "id": d.id,
                "agent": a.name,
                "status": d.status,
                "attempts": d.attempts,
                "last_error": d.last_error,
                "next_attempt_at": d.next_attempt_at,
                "delivered_at": d.delivered_at,
                "created_at": d.created_at,
                "idempotency_key": d.idempotency_key,
            }
            for d, a in agents.list_deliveries(session, status=status_, limit=limit)
        ]
    if as_json:
        emit_json(rows)
        return
    emit_table(
        ["ID", "AGENT", "STATUS", "ATTEMPTS", "LAST ERROR", "DELIVERED"],
        [
            [
                r["id"],
                r["agent"],
                r["status"],
                r["attempts"],
                (r["last_error"] or "")[:60] or None,
                r["delivered_at"],
            ]
            for r in rows
        ],
        empty="No agent deliveries" + (f" in status {status_}." if status_ else " yet."),
    )


@click.command("redeliver")
@click.argument("delivery_id", type=int)
@pass_cli
def redeliver(cli_ctx: CliContext, delivery_id: int) -> None:
    """Try a failed agent delivery again (its attempts start over)."""
    with cli_ctx.session() as session:
        found = agents.list_deliveries(session, limit=1, delivery_id=delivery_id)
        if not found:
            raise NotFoundError(f"No agent delivery {delivery_id}.")
        delivery, agent = found[0]
        delivery.status = DeliveryStatus.PENDING
        delivery.attempts = 0
        delivery.next_attempt_at = utcnow()
        kind = agent.kind
    enqueue_delivery(cli_ctx.runtime.redis, delivery_id, kind)
    click.echo(f"Queued agent delivery {delivery_id} again.")


def register(cli: click.Group) -> None:
    cli.add_command(group)
    agents_group.add_command(deliveries)
    agents_group.add_command(redeliver)
