"""`broadcast-bot demo`: a complete sandbox broadcast on this machine, from CSV to replies."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import click
from sqlalchemy import func, select

from bot.cli.broadcasts import broadcast_dict, metrics_table
from bot.cli.context import CliContext, pass_cli
from bot.cli.recipients import render_summary
from bot.cli.sending import progress_line
from bot.ops import devservers
from bot.ops.demo_stack import (
    AGENT_SECRET,
    AGENT_SECRET_ENV,
    APP_SECRET,
    SAMPLE_CSV,
    DemoAgent,
    Processes,
    free_port,
    wait_http,
)
from broadcasts import configs, service
from broadcasts.enums import BroadcastStatus, DeliveryStatus
from broadcasts.imports.importer import import_csv
from broadcasts.lifecycle import READ_ONLY
from broadcasts.metrics import stored_counts
from broadcasts.models import AgentDelivery, InboxEvent
from broadcasts.report import write_recipient_report
from broadcasts.urls import mask_credentials
from jobs import broadcast_control
from jobs.runtime import Runtime
from jobs.whatsapp_sync import sync_templates
from kapso.settings import provider_defaults
from migrations import run_upgrade

DEMO_CONFIG = "demo-sandbox"
DEMO_AGENT = "demo-agent"
DEMO_TEMPLATE = "holiday_promotion"
RATE, BATCH, PAUSE = 80, 500, 2.0
NEXT_STEPS = """\
Next steps
  • Real Slack (docs/slack.md): create the app from manifest.yml, set SLACK_BOT_TOKEN and
    SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode), then `make run`, /broadcast new.
  • Real WhatsApp through Kapso (docs/going-live.md): export KAPSO_API_KEY=…, then
      broadcast-bot configs add main --provider kapso --phone-number-id … --waba-id … --agent …
      broadcast-bot templates sync --config main
      broadcast-bot webhooks register-kapso --config main --url https://YOUR-HOST/webhooks/kapso
  • Check a setup at any time: broadcast-bot doctor"""


class Screen:
    """One live progress line with messages above it; plain lines every few seconds when the
    output is not a terminal (CI logs, pipes)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.line = ""
        self.live = sys.stdout.isatty()
        self.last_plain = 0.0

    def progress(self, line: str) -> None:
        with self.lock:
            self.line = line
            if self.live:
                sys.stdout.write("\r\033[K" + line)
            elif time.monotonic() - self.last_plain >= 5:
                self.last_plain = time.monotonic()
                sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def say(self, text: str) -> None:
        with self.lock:
            if self.live:
                sys.stdout.write("\r\033[K" + text + "\n" + self.line)
            else:
                sys.stdout.write(text + "\n")
            sys.stdout.flush()

    def done(self) -> None:
        with self.lock:
            sys.stdout.write("\n" if self.live else self.line + "\n")
            self.line = ""


@click.command("demo")
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=SAMPLE_CSV,
    show_default="the bundled ~2,000-row sample",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("demo-report.csv"),
    show_default=True,
)
@pass_cli
def demo(cli_ctx: CliContext, csv_path: Path, report_path: Path) -> None:
    """Run a whole broadcast locally: sandbox WhatsApp API, web server, worker, agent.

    Without REDIS_URL, and with nothing answering at the default address, it starts a private
    Redis for its own lifetime."""
    settings = cli_ctx.runtime.settings
    started = time.monotonic()
    click.echo(
        "WhatsApp Broadcast Bot demo: a sandbox WhatsApp API, our web server, a worker and a small "
        "agent, all on this machine.\nNothing reaches a real phone.\n"
    )
    try:
        redis = devservers.choose(
            devservers.REDIS,
            settings.redis_url,
            configured_by="REDIS_URL" if "redis_url" in settings.model_fields_set else None,
        )
    except (devservers.ServerUnavailable, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        click.echo(redis.line)
        if redis.server is not None:
            # Everything below, this process and its children alike, uses the private Redis.
            private = CliContext(Runtime(settings.model_copy(update={"redis_url": redis.url})))
            try:
                _run(private, csv_path, report_path, started)
            finally:
                private.close()
        else:
            _run(cli_ctx, csv_path, report_path, started)
    finally:
        redis.stop()


def _run(cli_ctx: CliContext, csv_path: Path, report_path: Path, started: float) -> None:
    settings = cli_ctx.runtime.settings
    run_upgrade(settings.database_url)
    click.echo(f"1/7 Database migrated ({mask_credentials(settings.database_url)}).")
    cli_ctx.runtime.redis.ping()

    screen = Screen()
    shown: list[int] = [0]

    def on_message(payload: dict[str, Any]) -> None:
        if shown[0] >= 3:
            return
        shown[0] += 1
        message = payload.get("message", {})
        text = message.get("text") or message.get("button", {}).get("text") or message.get("type")
        context = json.dumps(payload.get("broadcast_context"), ensure_ascii=False)
        screen.say(
            f"    agent ← {payload.get('contact', {}).get('phone')}: {text!r}\n"
            f"            broadcast_context {context}"
        )

    sandbox_port, web_port = free_port(), free_port()
    agent = DemoAgent(on_message)
    env = _child_env(settings.database_url, settings.redis_url, web_port)
    processes = Processes(env)
    with agent.running():
        try:
            processes.start(
                "sandbox",
                "sandbox",
                "--port",
                str(sandbox_port),
                "--latency-ms",
                "150",
                "--throughput",
                str(RATE),
                "--app-secret",
                APP_SECRET,
                "--speed",
                "4",
                "--reply-rate",
                "0.12",
                "--webhook-url",
                f"http://127.0.0.1:{web_port}/webhooks/whatsapp",
            )
            processes.start("web", "web", "--host", "127.0.0.1", "--port", str(web_port))
            processes.start("worker", "worker")
            wait_http(f"http://127.0.0.1:{sandbox_port}/_sandbox/stats", "sandbox")
            wait_http(f"http://127.0.0.1:{web_port}/healthz", "web server")
            click.echo(
                f"2/7 Started the sandbox WhatsApp API (port {sandbox_port}), the web server "
                f"(port {web_port}), a worker and the demo agent ({agent.url})."
            )
            base_url = f"http://127.0.0.1:{sandbox_port}/v24.0"
            _configure(cli_ctx, base_url, agent.url)
            click.echo(
                f"3/7 Configuration '{DEMO_CONFIG}': {RATE} msg/s, batches of {BATCH} "
                f"{PAUSE:g} s apart; replies go to agent '{DEMO_AGENT}'."
            )
            synced = sync_templates(cli_ctx.runtime, DEMO_CONFIG)
            click.echo(
                f"4/7 Synced templates from the sandbox's WABA: {synced.added} new, "
                f"{synced.updated} updated, {synced.unchanged} unchanged."
            )
            broadcast_id = _new_broadcast(cli_ctx)
            with csv_path.open("rb") as source:
                summary = import_csv(
                    cli_ctx.runtime.sessions,
                    broadcast_id,
                    source,
                    filename=csv_path.name,
                    region=settings.phone_default_region,
                    by=cli_ctx.actor,
                )
            click.echo(f"5/7 Imported {csv_path.name}:\n")
            click.echo(_indent(render_summary(summary)) + "\n")
            broadcast_control.start(cli_ctx.runtime, broadcast_id, by=cli_ctx.actor)
            click.echo("6/7 Sending (Ctrl-C stops the demo and its processes):")
            _follow(cli_ctx, processes, screen, broadcast_id)
            click.echo("7/7 Waiting for the last delivery receipts and replies…")
            _settle(cli_ctx, processes, screen, broadcast_id)
        finally:
            processes.stop()
    with cli_ctx.session() as session:
        broadcast = service.get_broadcast(session, broadcast_id)
        data = broadcast_dict(broadcast)
        with report_path.open("w", encoding="utf-8", newline="") as handle:
            rows = write_recipient_report(session, broadcast, handle)
    with_context = sum(1 for p in agent.received if p.get("broadcast_context"))
    click.echo(f"\nBroadcast '{data['name']}' {data['status']} — the seed's metrics:\n")
    click.echo(metrics_table(data["metrics"]))
    click.echo(
        f"\nThe agent received {len(agent.received)} replies, {with_context} with broadcast "
        f"context (signatures checked; {agent.bad_signatures} bad)."
    )
    click.echo(f"Per-recipient report ({rows} rows): {report_path.resolve()}")
    click.echo(f"Demo took {time.monotonic() - started:.0f} s; its processes are stopped.\n")
    click.echo(NEXT_STEPS)


def _child_env(database_url: str, redis_url: str, web_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": "demo-verify-token",
        AGENT_SECRET_ENV: AGENT_SECRET,
        "AGENT_ALLOW_PRIVATE_URLS": "true",  # the demo agent listens on 127.0.0.1
        "PORT": str(web_port),
        "LOG_LEVEL": "WARNING",
    }


def _configure(cli_ctx: CliContext, base_url: str, agent_url: str) -> None:
    os.environ.setdefault(AGENT_SECRET_ENV, AGENT_SECRET)
    with cli_ctx.session() as session:
        if configs.get_config_or_none(session, DEMO_CONFIG) is None:
            configs.add_agent(
                session,
                name=DEMO_AGENT,
                kind="webhook",
                url=agent_url,
                secret_env=AGENT_SECRET_ENV,
                by=cli_ctx.actor,
                allow_private_urls=True,  # the demo's agent listens on this machine
            )
            configs.add_config(
                session,
                name=DEMO_CONFIG,
                provider="sandbox",
                phone_number_id="100200300",
                business_account_id="900800700",
                api_base_url=base_url,
                credential_env=provider_defaults("sandbox")["credential_env"],
                agent=DEMO_AGENT,
                throughput_mps=RATE,
                batch_size=BATCH,
                batch_pause_seconds=PAUSE,
                display_phone_number="+1 555-010-0300",
                by=cli_ctx.actor,
            )
        # Ports change from run to run.
        configs.get_config(session, DEMO_CONFIG).api_base_url = base_url
        configs.get_agent(session, DEMO_AGENT).url = agent_url


def _new_broadcast(cli_ctx: CliContext) -> str:
    with cli_ctx.session() as session:
        broadcast = service.create_broadcast(
            session,
            name=f"Holiday Sale (demo {time.strftime('%H:%M:%S')})",
            config_ref=DEMO_CONFIG,
            template_ref=DEMO_TEMPLATE,
            by=cli_ctx.actor,
        )
        return broadcast.id


def _snapshot(cli_ctx: CliContext, broadcast_id: str) -> tuple[str, dict[str, Any], int]:
    with cli_ctx.session() as session:
        broadcast = service.get_broadcast(session, broadcast_id)
        data = broadcast_dict(broadcast)
        line = progress_line(data, stored_counts(broadcast).progress)
        backlog = session.scalar(select(func.count()).where(InboxEvent.processed_at.is_(None))) or 0
        backlog += (
            session.scalar(
                select(func.count()).where(AgentDelivery.status == DeliveryStatus.PENDING)
            )
            or 0
        )
    return line, data, int(backlog)


def _follow(cli_ctx: CliContext, processes: Processes, screen: Screen, broadcast_id: str) -> None:
    while True:
        processes.check()
        line, data, _ = _snapshot(cli_ctx, broadcast_id)
        screen.progress("    " + line)
        if data["status"] in READ_ONLY:
            screen.done()
            return
        if data["status"] == BroadcastStatus.PAUSED:
            raise click.ClickException(f"the broadcast paused: {data['status_reason']}")
        time.sleep(0.3)


def _settle(cli_ctx: CliContext, processes: Processes, screen: Screen, broadcast_id: str) -> None:
    """Show receipts and replies arriving until nothing changed for a few seconds (≤ 45 s)."""
    deadline = time.monotonic() + 45
    last, quiet_since = None, time.monotonic()
    while time.monotonic() < deadline:
        processes.check()
        line, data, backlog = _snapshot(cli_ctx, broadcast_id)
        screen.progress("    " + line)
        state = (data["metrics"], backlog)
        if state != last:
            last, quiet_since = state, time.monotonic()
        elif backlog == 0 and time.monotonic() - quiet_since > 6:
            break
        time.sleep(0.5)
    screen.done()


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def register(cli: click.Group) -> None:
    cli.add_command(demo)
