"""`broadcast-bot demo`: a complete sandbox run on the embedded database."""

from __future__ import annotations

import click

from bot.cli.broadcasts import broadcast_dict, render_broadcast
from bot.cli.context import CliContext, pass_cli
from broadcasts import configs, service
from broadcasts.templates import TemplateData, upsert_templates
from migrations import run_upgrade

DEMO_CONFIG = "demo-sandbox"
DEMO_AGENT = "demo-agent"
DEMO_TEMPLATE = TemplateData(
    name="holiday_promotion",
    language="en_US",
    category="MARKETING",
    status="APPROVED",
    parameter_format="POSITIONAL",
    parameter_names=["1"],
    body_text="Hi {{1}}, check out our special holiday offers!",
    components=[{"type": "BODY", "text": "Hi {{1}}, check out our special holiday offers!"}],
)


@click.command("demo")
@pass_cli
def demo(cli_ctx: CliContext) -> None:
    """Migrate, create a sandbox configuration and agent, and create and show a draft broadcast."""
    run_upgrade(cli_ctx.runtime.settings.database_url)
    click.echo("1. Database migrated.")
    with cli_ctx.session() as session:
        if configs.get_config_or_none(session, DEMO_CONFIG) is None:
            configs.add_agent(
                session,
                name=DEMO_AGENT,
                kind="webhook",
                url="http://127.0.0.1:8090/agent",
                by=cli_ctx.actor,
            )
            configs.add_config(
                session,
                name=DEMO_CONFIG,
                provider="sandbox",
                phone_number_id="100200300",
                business_account_id="900800700",
                agent=DEMO_AGENT,
                by=cli_ctx.actor,
            )
        config = configs.get_config(session, DEMO_CONFIG)
        upsert_templates(session, config, [DEMO_TEMPLATE])
    click.echo(f"2. Sandbox configuration '{DEMO_CONFIG}' with primary agent '{DEMO_AGENT}'.")
    with cli_ctx.session() as session:
        broadcast = service.create_broadcast(
            session,
            name="Holiday Sale (demo)",
            config_ref=DEMO_CONFIG,
            template_ref=DEMO_TEMPLATE.name,
            by=cli_ctx.actor,
        )
        data = broadcast_dict(broadcast)
    click.echo("3. Draft broadcast created:\n")
    click.echo(render_broadcast(data))


def register(cli: click.Group) -> None:
    cli.add_command(demo)
