"""`broadcast-bot worker`: the RQ worker for every queue, plus the maintenance loop."""

from __future__ import annotations

import logging

import click

from bot.cli.context import CliContext, pass_cli
from jobs import worker as worker_mod
from jobs.queues import ALL


@click.command("worker")
@click.option(
    "--queue",
    "queues",
    multiple=True,
    type=click.Choice(ALL),
    help="Only these queues (repeat); default: all.",
)
@click.option("--burst", is_flag=True, help="Exit when the queues are empty (tests, one-off runs).")
@click.option("--no-maintenance", is_flag=True, help="Do not run the maintenance loop here.")
@pass_cli
def worker(cli_ctx: CliContext, queues: tuple[str, ...], burst: bool, no_maintenance: bool) -> None:
    """Run a worker with the scheduler enabled; SIGTERM hands running work over gracefully."""
    logging.getLogger().setLevel(cli_ctx.runtime.settings.log_level.upper())
    worker_mod.run(
        cli_ctx.runtime, queues=queues or ALL, burst=burst, with_maintenance=not no_maintenance
    )


def register(cli: click.Group) -> None:
    cli.add_command(worker)
