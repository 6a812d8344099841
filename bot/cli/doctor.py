"""`broadcast-bot doctor`: one PASS/WARN/FAIL line per check, with the fix; exit 1 on any FAIL."""

from __future__ import annotations

import click

from bot.cli.context import json_option
from bot.cli.output import emit_json
from bot.ops.doctor_checks import FAIL, REQUIREMENTS, WARN, diagnose, summary

COLOURS = {"PASS": "green", "WARN": "yellow", "FAIL": "red"}


@click.command("doctor")
@click.option(
    "--require",
    "required",
    multiple=True,
    type=click.Choice(REQUIREMENTS),
    help="Treat a missing part as a failure, not a warning (repeat): slack, workers.",
)
@json_option
def doctor(required: tuple[str, ...], as_json: bool) -> None:
    """Check settings, database, migrations, Redis, workers, Slack and WhatsApp; show each fix."""
    checks = diagnose(required)
    if as_json:
        emit_json(
            {
                "ok": all(c.ok for c in checks),
                "summary": summary(checks),
                "checks": [c.as_dict() for c in checks],
            }
        )
    else:
        width = max(len(c.name) for c in checks)
        for check in checks:
            status = click.style(check.status, fg=COLOURS[check.status], bold=True)
            click.echo(f"{status}  {check.name.ljust(width)}  {check.detail}")
            if check.fix and check.status in (FAIL, WARN):
                click.echo(f"      {' ' * width}  fix: {check.fix}")
        click.echo(summary(checks))
    if any(c.status == FAIL for c in checks):
        raise SystemExit(1)


def register(cli: click.Group) -> None:
    cli.add_command(doctor)
