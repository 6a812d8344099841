"""`broadcast-bot worker`: the send, events and bulk roles, each a process of its own."""

from __future__ import annotations

import logging

import click

from bot.cli.context import CliContext, pass_cli
from jobs import worker as worker_mod
from jobs.queues import ALL


@click.command("worker")
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(tuple(worker_mod.ROLES)),
    help="Run only this role (repeat for several, each in its own process); default: all.",
)
@click.option(
    "--queue",
    "queues",
    multiple=True,
    type=click.Choice(ALL),
    help="One process on these queues instead of the roles (repeat).",
)
@click.option("--burst", is_flag=True, help="Drain every queue once in this process, then exit.")
@click.option("--no-maintenance", is_flag=True, help="Do not run the maintenance loop here.")
@pass_cli
def worker(
    cli_ctx: CliContext,
    roles: tuple[str, ...],
    queues: tuple[str, ...],
    burst: bool,
    no_maintenance: bool,
) -> None:
    """Run the workers: sending, webhooks/Slack/agents and imports never wait for each other.

    By default one process per role (send, events, bulk) under this one, which restarts a
    role that dies and passes SIGTERM on (lanes hand over within a second). Start more
    `worker` processes, on any machines, to scale out."""
    logging.getLogger().setLevel(cli_ctx.runtime.settings.log_level.upper())
    if queues or burst or len(roles) == 1:
        worker_mod.steady_loops()  # a process that works (the supervisor only watches)
    if queues or burst:
        worker_mod.run(
            cli_ctx.runtime,
            queues=queues or ALL,
            burst=burst,
            with_maintenance=not no_maintenance,
        )
    elif len(roles) == 1:
        role = roles[0]
        worker_mod.run(
            cli_ctx.runtime,
            queues=worker_mod.ROLES[role],
            with_maintenance=role == "events" and not no_maintenance,
        )
    else:
        cli_ctx.close()  # the role processes connect for themselves
        worker_mod.supervise(
            roles or tuple(worker_mod.ROLES),
            ("--no-maintenance",) if no_maintenance else (),
        )


def register(cli: click.Group) -> None:
    cli.add_command(worker)
