"""`broadcast-bot configs`: the WhatsApp numbers we send from."""

from __future__ import annotations

from typing import Any

import click

from bot.cli.context import CliContext, json_option, pass_cli
from bot.cli.output import emit_json, emit_table
from broadcasts import configs as service
from broadcasts.enums import Provider
from broadcasts.errors import BroadcastBotError
from broadcasts.models import WhatsAppConfig
from broadcasts.pacing import SEED_BATCH_PAUSE_SECONDS, SEED_BATCH_SIZE, SEED_RATE_MPS
from broadcasts.urls import mask_credentials
from jobs.whatsapp_sync import refresh_limits
from kapso.settings import provider_defaults


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
        "throughput_level": config.throughput_level,
        "messaging_limit": config.messaging_limit,
        "limits_checked_at": config.limits_checked_at,
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
    "--throughput",
    "throughput_mps",
    type=int,
    help="Messages/s. Default: the number's throughput level read from WhatsApp "
    f"(STANDARD 80/s, HIGH 1,000/s), or the seed's {SEED_RATE_MPS}/s when it cannot be read.",
)
@click.option("--batch-size", type=int, default=SEED_BATCH_SIZE, show_default=True)
@click.option(
    "--batch-pause",
    "batch_pause_seconds",
    type=float,
    default=SEED_BATCH_PAUSE_SECONDS,
    show_default=True,
    help="Seconds between batches.",
)
@click.option("--display-number", "display_phone_number", help="The number as people see it.")
@click.option("--agent", help="Primary agent (name) that answers replies.")
@json_option
@pass_cli
def add(cli_ctx: CliContext, /, name: str, as_json: bool, **options: Any) -> None:
    """Add a WhatsApp configuration NAME; its throughput level and messaging limit are read
    from WhatsApp (and refreshed by `templates sync` and `doctor`)."""
    # What the operator left out, the provider's defaults fill in.
    given = {k: v for k, v in options.items() if v is not None}
    filled = {**provider_defaults(options["provider"]), **given}
    with cli_ctx.session() as session:
        service.add_config(session, name=name, by=cli_ctx.actor, **filled)
    note = None
    try:
        refresh_limits(cli_ctx.runtime, name, rate_from_level=options["throughput_mps"] is None)
    except BroadcastBotError as exc:
        note = (
            f"Could not read the number's throughput and messaging limit ({exc}); the rate stays "
            f"{options['throughput_mps'] or SEED_RATE_MPS}/s until `broadcast-bot templates sync` "
            "or `broadcast-bot doctor` reads them."
        )
    with cli_ctx.session() as session:
        data = config_dict(service.get_config(session, name))
    if as_json:
        emit_json({**data, "limits_error": note})
    else:
        click.echo(
            f"Added configuration '{name}' ({data['provider']}, number {data['phone_number_id']}): "
            f"{data['throughput_mps']}/s (throughput level {data['throughput_level'] or 'unknown'}"
            f"), messaging limit {data['messaging_limit'] or 'unknown'}, batches of "
            f"{data['batch_size']} every {data['batch_pause_seconds']:g} s."
        )
        if note:
            click.echo(note)
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
            "LEVEL",
            "LIMIT",
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
                r["throughput_level"] or "unknown",
                r["messaging_limit"] or "unknown",
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


@group.command("refresh")
@click.argument("config", required=False)
@json_option
@pass_cli
def refresh(cli_ctx: CliContext, config: str | None, as_json: bool) -> None:
    """Read the throughput level and messaging limit of CONFIG (default: every one) now."""
    with cli_ctx.session() as session:
        names = [config] if config else [c.name for c in service.list_configs(session)]
    results: dict[str, Any] = {}
    failures = []
    for name in names:
        try:
            found = refresh_limits(cli_ctx.runtime, name)
        except BroadcastBotError as exc:
            if config:
                raise
            failures.append(f"{name}: {exc}")
            results[name] = {"error": str(exc)}
            continue
        results[name] = {
            "throughput_level": found.throughput_level,
            "throughput_mps": found.throughput_mps,
            "messaging_limit": found.messaging_limit,
            "changes": found.changes,
        }
        if not as_json:
            changed = f" (changed: {'; '.join(found.changes)})" if found.changes else ""
            click.echo(f"{name}: {found.describe()}{changed}")
    if as_json:
        emit_json(results)
    if failures:
        raise click.ClickException("; ".join(failures))


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
