"""`broadcast-bot web`: the HTTP server (Slack events, WhatsApp webhooks, health, metrics)."""

from __future__ import annotations

import os

import click

from bot.cli.context import CliContext, pass_cli


def default_workers() -> int:
    """$WEB_CONCURRENCY (the PaaS convention), else one process per core, up to 4.

    One process tops out near one core (HMAC, JSON, the event loop); with more, webhook bursts
    are acknowledged in parallel while each process still groups its commits.
    """
    configured = os.environ.get("WEB_CONCURRENCY", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return min(int(configured), 64)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, 4))


@click.command("web")
@click.option(
    "--host",
    default="0.0.0.0",  # noqa: S104 (a server behind a PaaS router)
    show_default=True,
    help="Interface to listen on.",
)
@click.option("--port", type=int, default=None, help="Port (default: $PORT, else 8000).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=default_workers,
    show_default="$WEB_CONCURRENCY, else one per core up to 4",
    help="Server processes (each runs its own event loop and inbox writer).",
)
@click.option("--access-log/--no-access-log", default=False, show_default=True)
@pass_cli
def web(cli_ctx: CliContext, host: str, port: int | None, workers: int, access_log: bool) -> None:
    """Run the production HTTP server (uvicorn with uvloop and httptools)."""
    import uvicorn

    settings = cli_ctx.runtime.settings
    uvicorn.run(
        "bot.http.app:create_app",
        factory=True,
        host=host,
        port=port or settings.port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=access_log,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's loggers go through ours: LOG_FORMAT, masking
        proxy_headers=True,
        forwarded_allow_ips="*",
        timeout_graceful_shutdown=20,
        # uvicorn's 5 s default killed and restarted each process, forever, while a busy machine
        # took longer than that to import the app (seen at load average 20 on 2 cores).
        timeout_worker_healthcheck=60,
    )


def register(cli: click.Group) -> None:
    cli.add_command(web)
