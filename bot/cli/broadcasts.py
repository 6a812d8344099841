"""`broadcast-bot broadcasts`: create, inspect and drive broadcasts (mirrors Slack)."""

from __future__ import annotations

from typing import Any

import click

from bot.cli.context import CliContext, json_option, pass_cli
from bot.cli.output import emit_json, emit_table, key_values, table
from broadcasts import service
from broadcasts.metrics import RATES, stored_counts
from broadcasts.models import Broadcast


def broadcast_dict(b: Broadcast) -> dict[str, Any]:
    batch_size, pause, rate = service.effective_pacing(b)
    counts = stored_counts(b)
    return {
        "id": b.id,
        "name": b.name,
        "status": b.status,
        "status_reason": b.status_reason,
        "config": b.config.name,
        "template": f"{b.template.name}:{b.template.language}",
        "agent": b.agent.name,
        "scheduled_at": b.scheduled_at,
        "pacing": {"batch_size": batch_size, "batch_pause_seconds": pause, "rate_mps": rate},
        "metrics": counts.as_dict(),
        "created_by": b.created_by,
        "created_at": b.created_at,
        "started_at": b.started_at,
        "finished_at": b.finished_at,
    }


@click.group("broadcasts")
def group() -> None:
    """Broadcasts: create, list, show, upload recipients, send, watch."""


@group.command("new")
@click.argument("name")
@click.option("--config", "config_ref", required=True, help="WhatsApp configuration (name or id).")
@click.option(
    "--template", "template_ref", required=True, help="Approved template: name or name:language."
)
@click.option("--batch-size", type=int, help="Override the configuration's batch size.")
@click.option("--batch-pause", "batch_pause_seconds", type=float, help="Seconds between batches.")
@click.option(
    "--rate", "rate_mps", type=float, help="Messages/s for this broadcast (≤ the number's)."
)
@click.option(
    "--failure-threshold", type=float, help="Pause when this share of a batch fails (0–1)."
)
@json_option
@pass_cli
def new(cli_ctx: CliContext, /, name: str, as_json: bool, **options: Any) -> None:
    """Create a draft broadcast NAME; its agent is the configuration's primary agent."""
    with cli_ctx.session() as session:
        broadcast = service.create_broadcast(session, name=name, by=cli_ctx.actor, **options)
        data = broadcast_dict(broadcast)
    if as_json:
        emit_json(data)
        return
    click.echo(
        f"Created draft broadcast '{data['name']}' ({data['id']}) "
        f"with template {data['template']}; "
        f"replies go to agent '{data['agent']}'."
    )


@group.command("list")
@click.option(
    "--status", help="Only this status (draft, scheduled, sending, paused, completed, …)."
)
@click.option("--limit", type=int, default=50, show_default=True)
@json_option
@pass_cli
def list_(cli_ctx: CliContext, status: str | None, limit: int, as_json: bool) -> None:
    """List broadcasts, newest first."""
    with cli_ctx.session() as session:
        rows = [
            broadcast_dict(b) for b in service.list_broadcasts(session, status=status, limit=limit)
        ]
    if as_json:
        emit_json(rows)
        return
    emit_table(
        [
            "ID",
            "NAME",
            "STATUS",
            "TEMPLATE",
            "TOTAL",
            "SENT",
            "DELIVERED",
            "READ",
            "RESPONDED",
            "FAILED",
        ],
        [
            [r["id"][:8], r["name"], r["status"], r["template"]]
            + [
                r["metrics"][k]
                for k in ("total", "sent", "delivered", "read", "responded", "failed")
            ]
            for r in rows
        ],
        empty="No broadcasts yet: broadcast-bot broadcasts new NAME --config … --template …",
    )


@group.command("show")
@click.argument("ref")
@json_option
@pass_cli
def show(cli_ctx: CliContext, ref: str, as_json: bool) -> None:
    """Show one broadcast (id, id prefix or name) with its metrics."""
    with cli_ctx.session() as session:
        data = broadcast_dict(service.get_broadcast(session, ref))
    if as_json:
        emit_json(data)
        return
    click.echo(render_broadcast(data))


def render_broadcast(data: dict[str, Any]) -> str:
    m = data["metrics"]
    pacing = data["pacing"]
    head = key_values(
        [
            ("Broadcast", f"{data['name']} ({data['id']})"),
            (
                "Status",
                data["status"] + (f" — {data['status_reason']}" if data["status_reason"] else ""),
            ),
            ("Configuration", data["config"]),
            ("Template", data["template"]),
            ("Agent", data["agent"]),
            ("Scheduled at", data["scheduled_at"]),
            (
                "Pacing",
                f"batches of {pacing['batch_size']}, {pacing['batch_pause_seconds']:g} s apart, "
                f"≤ {pacing['rate_mps']:g} msg/s",
            ),
            ("Created", f"{data['created_at']:%Y-%m-%d %H:%M UTC} by {data['created_by']}"),
        ]
    )
    return head + "\n\n" + metrics_table(m)


def metrics_table(m: dict[str, Any]) -> str:
    return table(
        ["Metric", "Value"],
        [
            ["Total recipients", m["total"]],
            ["Sent", m["sent"]],
            ["Delivered", m["delivered"]],
            ["Read", m["read"]],
            ["Responded", m["responded"]],
            ["Failed", m["failed"]],
            ["Pending", m["pending"]],
            ["Skipped", m["skipped"]],
            ["Opted out (STOP replies)", m["opted_out"]],
            *([label, f"{m[key] * 100:.1f}% ({meaning})"] for key, label, meaning in RATES),
        ],
    )


def register(cli: click.Group) -> None:
    cli.add_command(group)
