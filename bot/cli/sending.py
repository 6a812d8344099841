"""`broadcast-bot broadcasts start|pause|resume|cancel|schedule|unschedule|test|watch`."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

import click

from bot.cli.broadcasts import broadcast_dict, group, metrics_table
from bot.cli.context import CliContext, json_option, pass_cli
from bot.cli.output import emit_json
from broadcasts import service
from broadcasts.durations import duration_text
from broadcasts.enums import BroadcastStatus
from broadcasts.errors import ValidationFailed
from broadcasts.imports.phones import country_label
from broadcasts.lifecycle import READ_ONLY
from broadcasts.metrics import stored_counts
from broadcasts.pacing import estimate_seconds
from broadcasts.report import write_recipient_report
from broadcasts.send_check import send_preview
from jobs import broadcast_control


@click.command("start")
@click.argument("ref")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation on a terminal.")
@json_option
@pass_cli
def start(cli_ctx: CliContext, ref: str, yes: bool, as_json: bool) -> None:
    """Start sending REF now (workers pick it up within a second).

    Prints the Send confirmation first (recipients, per country, pace, warnings) and, on a
    terminal, asks before sending unless --yes is given.
    """
    if not as_json:
        click.echo(confirmation_text(cli_ctx, ref))
        if not yes and sys.stdin.isatty():
            click.confirm("Send now?", abort=True)
    broadcast = broadcast_control.start(cli_ctx.runtime, ref, by=cli_ctx.actor)
    _report(
        cli_ctx,
        broadcast.id,
        as_json,
        f"Sending '{broadcast.name}'. Follow it with: "
        f"broadcast-bot broadcasts watch {broadcast.id[:8]}",
    )


@click.command("pause")
@click.argument("ref")
@click.option("--reason", help="Shown on the broadcast.")
@json_option
@pass_cli
def pause(cli_ctx: CliContext, ref: str, reason: str | None, as_json: bool) -> None:
    """Pause REF: no new message starts; in-flight ones finish."""
    broadcast = broadcast_control.pause(cli_ctx.runtime, ref, by=cli_ctx.actor, reason=reason)
    _report(
        cli_ctx,
        broadcast.id,
        as_json,
        f"Paused '{broadcast.name}'. Resume with: "
        f"broadcast-bot broadcasts resume {broadcast.id[:8]}",
    )


@click.command("resume")
@click.argument("ref")
@json_option
@pass_cli
def resume(cli_ctx: CliContext, ref: str, as_json: bool) -> None:
    """Resume a paused REF where it stopped."""
    broadcast = broadcast_control.resume(cli_ctx.runtime, ref, by=cli_ctx.actor)
    _report(cli_ctx, broadcast.id, as_json, f"Resumed '{broadcast.name}'.")


@click.command("cancel")
@click.argument("ref")
@json_option
@pass_cli
def cancel(cli_ctx: CliContext, ref: str, as_json: bool) -> None:
    """Cancel REF: recipients not yet sent become `skipped`; it is read-only after."""
    broadcast, skipped = broadcast_control.cancel(cli_ctx.runtime, ref, by=cli_ctx.actor)
    _report(
        cli_ctx,
        broadcast.id,
        as_json,
        f"Cancelled '{broadcast.name}'; {skipped} recipients skipped.",
    )


@click.command("schedule")
@click.argument("ref")
@click.argument("at")
@json_option
@pass_cli
def schedule(cli_ctx: CliContext, ref: str, at: str, as_json: bool) -> None:
    """Schedule REF for AT, an ISO 8601 time with its zone (2026-12-20T10:00:00+01:00 or …Z)."""
    when = _parse_time(at)
    broadcast = broadcast_control.schedule(cli_ctx.runtime, ref, when, by=cli_ctx.actor)
    assert broadcast.scheduled_at is not None
    _report(
        cli_ctx,
        broadcast.id,
        as_json,
        f"Scheduled '{broadcast.name}' for {broadcast.scheduled_at:%Y-%m-%d %H:%M:%S} UTC "
        f"({when.isoformat()}). A running worker starts it on time.",
    )


@click.command("unschedule")
@click.argument("ref")
@json_option
@pass_cli
def unschedule(cli_ctx: CliContext, ref: str, as_json: bool) -> None:
    """Cancel REF's schedule; it goes back to draft."""
    broadcast = broadcast_control.unschedule(cli_ctx.runtime, ref, by=cli_ctx.actor)
    _report(cli_ctx, broadcast.id, as_json, f"'{broadcast.name}' is a draft again.")


@click.command("test")
@click.argument("ref")
@click.argument("phone")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A template parameter (repeat): 1=Ana for {{1}}, first_name=Ana for named ones.",
)
@json_option
@pass_cli
def test(cli_ctx: CliContext, ref: str, phone: str, params: tuple[str, ...], as_json: bool) -> None:
    """Send REF's template once to PHONE, outside the broadcast's metrics."""
    values: dict[str, str] = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValidationFailed(f"--param '{item}' is not NAME=VALUE.", field="param")
        values[name.strip()] = value
    wamid = broadcast_control.test_send(
        cli_ctx.runtime, ref, phone=phone, params=values, by=cli_ctx.actor
    )
    if as_json:
        emit_json({"wamid": wamid, "to": phone})
    else:
        click.echo(f"Test message accepted by WhatsApp (wamid {wamid}).")


@click.command("watch")
@click.argument("ref")
@click.option("--interval", type=float, default=0.5, show_default=True)
@pass_cli
def watch(cli_ctx: CliContext, ref: str, interval: float) -> None:
    """Show REF's progress live until it finishes (Ctrl-C stops watching, not sending)."""
    try:
        while True:
            with cli_ctx.session() as session:
                broadcast = service.get_broadcast(session, ref)
                line = progress_line(broadcast_dict(broadcast), stored_counts(broadcast).progress)
                finished = broadcast.status in READ_ONLY
                data = broadcast_dict(broadcast)
            sys.stdout.write("\r\033[K" + line)
            sys.stdout.flush()
            if finished:
                click.echo("\n\n" + metrics_table(data["metrics"]))
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        click.echo("\nStopped watching; the broadcast goes on.")


@click.command("report")
@click.argument("ref")
@click.option(
    "--out", type=click.Path(dir_okay=False, writable=True), help="Default: ./<name>-report.csv"
)
@pass_cli
def report(cli_ctx: CliContext, ref: str, out: str | None) -> None:
    """Write REF's per-recipient report (status, timestamps, error code and reason) as CSV."""
    with cli_ctx.session() as session:
        broadcast = service.get_broadcast(session, ref)
        path = Path(out or f"{_slug(broadcast.name)}-report.csv")
        with path.open("w", encoding="utf-8", newline="") as handle:
            rows = write_recipient_report(session, broadcast, handle)
    click.echo(f"Wrote {rows} recipients to {path}")


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "broadcast"


def progress_line(data: dict[str, object], progress: float, width: int = 30) -> str:
    m = data["metrics"]
    assert isinstance(m, dict)
    filled = int(progress * width)
    bar = "█" * filled + "░" * (width - filled)
    pacing = data["pacing"]
    assert isinstance(pacing, dict)
    eta = ""
    if data["status"] == BroadcastStatus.SENDING and m["pending"]:
        seconds = estimate_seconds(
            m["pending"],
            batch_size=pacing["batch_size"],
            pause_seconds=pacing["batch_pause_seconds"],
            rate=pacing["rate_mps"],
        )
        eta = f" ETA ~{duration_text(seconds)}"
    return (
        f"{bar} {progress * 100:5.1f}% {data['status']:<9} total {m['total']} sent {m['sent']} "
        f"delivered {m['delivered']} read {m['read']} responded {m['responded']} "
        f"failed {m['failed']}{eta}"
    )


def _parse_time(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(
            f"'{text}' is not an ISO 8601 time (e.g. 2026-12-20T10:00:00+01:00).", field="at"
        ) from None
    if when.tzinfo is None:
        raise ValidationFailed(
            f"'{text}' has no timezone; add one (e.g. +01:00 or Z for UTC).", field="at"
        )
    return when


def confirmation_text(cli_ctx: CliContext, ref: str) -> str:
    """The CLI's Send confirmation: the same figures and warnings as Slack's."""
    with cli_ctx.session() as session:
        p = send_preview(session, ref)
    lines = [
        f"Send '{p.name}' (template {p.template_name}) to {p.recipients:,} recipients: about "
        f"{duration_text(p.estimate_seconds)} at {p.rate_mps:g} msg/s in batches of "
        f"{p.batch_size:,}, {p.batch_pause_seconds:g} s apart.",
        "Recipients by country: "
        + (", ".join(f"{country_label(c)} {n:,}" for c, n in p.countries) or "none"),
    ]
    lines += [f"Warning: {w.replace('*', '')}" for w in p.warnings]
    return "\n".join(lines)


def _report(cli_ctx: CliContext, broadcast_id: str, as_json: bool, message: str) -> None:
    if as_json:
        with cli_ctx.session() as session:
            emit_json(broadcast_dict(service.get_broadcast(session, broadcast_id)))
    else:
        click.echo(message)


def register(cli: click.Group) -> None:
    for command in (start, pause, resume, cancel, schedule, unschedule, test, watch, report):
        group.add_command(command)
