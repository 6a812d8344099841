"""`broadcast-bot agents`: who answers replies."""

from __future__ import annotations

from typing import Any

import click

from bot.cli.context import CliContext, json_option, pass_cli
from bot.cli.output import emit_json, emit_table
from broadcasts import configs as service
from broadcasts.enums import AgentKind
from broadcasts.urls import mask_credentials


@click.group("agents")
def group() -> None:
    """Agents that answer replies (webhook or Slack channel)."""


@group.command("add")
@click.argument("name")
@click.option(
    "--kind", type=click.Choice([k.value for k in AgentKind]), default="webhook", show_default=True
)
@click.option("--url", help="webhook: where inbound messages are POSTed.")
@click.option(
    "--secret-env", help="webhook: NAME of the env variable holding the HMAC signing secret."
)
@click.option("--channel", "channel_id", help="slack: channel id where conversations appear.")
@json_option
@pass_cli
def add(cli_ctx: CliContext, /, name: str, kind: str, as_json: bool, **options: Any) -> None:
    """Add an agent NAME."""
    with cli_ctx.session() as session:
        agent = service.add_agent(
            session,
            name=name,
            kind=kind,
            by=cli_ctx.actor,
            allow_private_urls=cli_ctx.runtime.settings.agent_allow_private_urls,
            **options,
        )
        data = {
            "id": agent.id,
            "name": agent.name,
            "kind": agent.kind,
            "url": mask_credentials(agent.url) or None,
            "secret_env": agent.secret_env,
            "slack_channel_id": agent.channel_id,  # the key scripts already read
        }
    if as_json:
        emit_json(data)
    else:
        click.echo(f"Added {kind} agent '{name}'.")


@group.command("list")
@json_option
@pass_cli
def list_(cli_ctx: CliContext, as_json: bool) -> None:
    """List agents."""
    with cli_ctx.session() as session:
        rows = [
            {
                "id": a.id,
                "name": a.name,
                "kind": a.kind,
                "target": mask_credentials(a.url) or a.channel_id,
                "secret_env": a.secret_env,
            }
            for a in service.list_agents(session)
        ]
    if as_json:
        emit_json(rows)
        return
    emit_table(
        ["NAME", "KIND", "TARGET", "SECRET ENV"],
        [[r["name"], r["kind"], r["target"], r["secret_env"]] for r in rows],
        empty="No agents yet: broadcast-bot agents add NAME --url https://…",
    )


def register(cli: click.Group) -> None:
    cli.add_command(group)
