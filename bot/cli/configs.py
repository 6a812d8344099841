"""`broadcast-bot configs`: the WhatsApp numbers we send from."""

from __future__ import annotations

from typing import Any

import click

from bot.cli.context import CliContext, json_option, pass_cli
from bot.cli.output import emit_json, emit_table
from broadcasts import configs as service
from broadcasts.enums import Provider
from broadcasts.models import WhatsAppConfig
from broadcasts.urls import mask_credentials


def config_dict(config: WhatsAppConfig) -> dict[str, Any]:
    return {
        "id": config.id,
        "name": config.name,
        "provider": config.provider,
        "phone_number_id": config.phone_number_id,
        "business_account_id": config.business_account_id,
        "display_phone_number": config.display_phone_number,
        "api_base_url": mask_credentials(config.api_base_url),
        "credential_env": config.credential_env,
        "throughput_mps": config.throughput_mps,
        "batch_size": config.batch_size,
        "batch_pause_seconds": config.batch_pause_seconds,
        "primary_agent": config.primary_agent.name if config.primary_agent else None,
    }


@click.group("configs")
def group() -> None:
    """WhatsApp configurations (numbers to send from)."""


@group.command("add")
@click.argument("name")
@click.option(
    "--provider",
    type=click.Choice([p.value for p in Provider]),
    default=Provider.KAPSO.value,
    show_default=True,
)
@click.option("--phone-number-id", required=True, help="The number's id in the WhatsApp API.")
@click.option(
    "--waba-id", "business_account_id", required=True, help="WhatsApp Business Account id."
)
@click.option(
    "--api-base-url", help="Defaults per provider (Kapso proxy, Meta Graph, local sandbox)."
)
@click.option(
    "--credential-env",
    help="NAME of the environment variable holding the API key/token (default KAPSO_API_KEY; "
    "META_ACCESS_TOKEN for meta). The secret itself is never stored.",
)
@click.option(
    "--throughput", "throughput_mps", type=int, default=80, show_default=True, help="Messages/s."
)
@click.option("--batch-size", type=int, default=500, show_default=True)
@click.option(
    "--batch-pause",
    "batch_pause_seconds",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds between batches.",
)
@click.option("--display-number", "display_phone_number", help="The number as people see it.")
@click.option("--agent", help="Primary agent (name) that answers replies.")
@json_option
@pass_cli
def add(cli_ctx: CliContext, /, name: str, as_json: bool, **options: Any) -> None:
    """Add a WhatsApp configuration NAME."""
    with cli_ctx.session() as session:
        config = service.add_config(session, name=name, by=cli_ctx.actor, **options)
        data = config_dict(config)
    if as_json:
        emit_json(data)
    else:
        click.echo(
            f"Added configuration '{name}' ({data['provider']}, number {data['phone_number_id']})."
        )
        if data["primary_agent"] is None:
            click.echo(
                f"Next: give it a primary agent: broadcast-bot configs set-agent {name} AGENT"
            )


@group.command("list")
@json_option
@pass_cli
def list_(cli_ctx: CliContext, as_json: bool) -> None:
    """List configurations."""
    with cli_ctx.session() as session:
        rows = [config_dict(c) for c in service.list_configs(session)]
    if as_json:
        emit_json(rows)
        return
    emit_table(
        [
            "NAME",
            "PROVIDER",
            "PHONE NUMBER ID",
            "WABA",
            "RATE/S",
            "BATCH",
            "PAUSE S",
            "AGENT",
            "CREDENTIAL",
        ],
        [
            [
                r["name"],
                r["provider"],
                r["phone_number_id"],
                r["business_account_id"],
                r["throughput_mps"],
                r["batch_size"],
                r["batch_pause_seconds"],
                r["primary_agent"],
                r["credential_env"],
            ]
            for r in rows
        ],
        empty="No configurations yet: "
        "broadcast-bot configs add NAME --phone-number-id … --waba-id …",
    )


@group.command("set-agent")
@click.argument("config")
@click.argument("agent")
@pass_cli
def set_agent(cli_ctx: CliContext, config: str, agent: str) -> None:
    """Make AGENT the primary agent of CONFIG (new broadcasts get it)."""
    with cli_ctx.session() as session:
        service.set_primary_agent(session, config, agent, by=cli_ctx.actor)
    click.echo(f"Primary agent of '{config}' is now '{agent}'.")


@group.command("set-pacing")
@click.argument("config")
@click.option("--throughput", "throughput_mps", type=int, help="Messages/s the number may send.")
@click.option("--batch-size", type=int)
@click.option("--batch-pause", "batch_pause_seconds", type=float, help="Seconds between batches.")
@pass_cli
def set_pacing(cli_ctx: CliContext, /, config: str, **options: Any) -> None:
    """Change the default pacing of CONFIG."""
    with cli_ctx.session() as session:
        updated = service.set_pacing(session, config, by=cli_ctx.actor, **options)
        click.echo(
            f"'{updated.name}': {updated.throughput_mps}/s, batches of {updated.batch_size}, "
            f"{updated.batch_pause_seconds:g} s between batches."
        )


def register(cli: click.Group) -> None:
    cli.add_command(group)
