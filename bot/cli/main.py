"""Entry point of `broadcast-bot`: one group, errors as one line and a non-zero exit."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import click
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

import bot.cli
from bot import next_steps
from bot.cli.context import CliContext, pass_cli
from bot.ops.logs import configure_for_command
from broadcasts.errors import BroadcastBotError
from broadcasts.urls import mask_credentials
from migrations import run_upgrade


class FriendlyGroup(click.Group):
    """Turns the errors a user can cause into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BroadcastBotError as exc:
            raise click.ClickException(next_steps.for_cli(exc)) from None
        except (OperationalError, ProgrammingError) as exc:
            raise click.ClickException(_database_hint(exc)) from None
        except DBAPIError as exc:
            raise click.ClickException(f"Database error: {exc.orig}") from None
        except RedisConnectionError as exc:
            raise click.ClickException(
                f"Redis is not reachable ({exc}); check REDIS_URL and that redis-server runs."
            ) from None


def _database_hint(exc: DBAPIError) -> str:
    text = str(exc.orig)
    if "no such table" in text or ("does not exist" in text and "relation" in text):
        return "The database has no tables yet: run `broadcast-bot migrate` first."
    return f"Database not usable ({text.strip().splitlines()[0]}); check DATABASE_URL."


@click.group(cls=FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log debug details to stderr.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """WhatsApp Broadcast Bot: send approved WhatsApp templates to many people."""
    cli_ctx = ctx.ensure_object(CliContext)
    ctx.call_on_close(cli_ctx.close)
    configure_for_command(
        lambda: cli_ctx.runtime.settings, verbose=verbose, command=ctx.invoked_subcommand
    )


@cli.command()
@pass_cli
def migrate(cli_ctx: CliContext) -> None:
    """Upgrade the database (DATABASE_URL) to the latest schema."""
    url = cli_ctx.runtime.settings.database_url
    run_upgrade(url)
    click.echo(f"Database is at the latest schema ({mask_credentials(url)}).")


def _register_commands() -> None:
    """Every module of bot.cli with a `register(cli)` adds its commands (one module per area)."""
    for info in sorted(pkgutil.iter_modules(bot.cli.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"bot.cli.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(cli)


_register_commands()


def main() -> None:
    cli.main(prog_name="broadcast-bot")


if __name__ == "__main__":  # pragma: no cover
    main()
