"""`broadcast-bot web`: the HTTP server (Slack events, WhatsApp webhooks, health, metrics)."""

from __future__ import annotations

import click

from bot.cli.context import CliContext, pass_cli


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
    default=1,
    show_default=True,
    help="Server processes (each runs its own event loop and inbox writer).",
)
@click.option("--access-log/--no-access-log", default=False, show_default=True)
@pass_cli
def web(cli_ctx: CliContext, host: str, port: int | None, workers: int, access_log: bool) -> None:
    """Run the production HTTP server (uvicorn with uvloop and httptools)."""
    import uvicorn

    settings = cli_ctx.runtime.settings
    uvicorn.run(
        "bot.server:create_app",
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
    )


def register(cli: click.Group) -> None:
    cli.add_command(web)
