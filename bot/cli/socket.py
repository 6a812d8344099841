"""`broadcast-bot socket`: the Slack app over Socket Mode (no public URL needed)."""

from __future__ import annotations

import logging

import click

from bot.cli.context import CliContext, pass_cli


@click.command("socket")
@pass_cli
def socket(cli_ctx: CliContext) -> None:
    """Connect to Slack with SLACK_APP_TOKEN (Socket Mode) and handle the app's traffic."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    from bot.slack.app import build_app

    runtime = cli_ctx.runtime
    settings = runtime.settings
    app_token = settings.require("slack_app_token", "Socket Mode needs an app-level token (xapp-…)")
    app = build_app(runtime, socket_mode=True)
    logging.getLogger("slack_bolt").setLevel(settings.log_level.upper())
    click.echo("Connecting to Slack over Socket Mode; Ctrl-C stops.")
    SocketModeHandler(app, app_token).start()  # type: ignore[no-untyped-call]


def register(cli: click.Group) -> None:
    cli.add_command(socket)
