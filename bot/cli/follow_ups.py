"""`broadcasts retry-failed | duplicate | edit | remove-recipients | imports | audit`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bot.cli.broadcasts import group
from bot.cli.context import CliContext, json_option, pass_cli
from bot.cli.output import emit_json, emit_table
from broadcasts import audit, drafts, follow_ups, service
from kapso.errors import resend_wait


@click.command("retry-failed")
@click.argument("ref")
@click.option("--dry-run", is_flag=True, help="Only say who would be retried; create nothing.")
@json_option
@pass_cli
def retry_failed(cli_ctx: CliContext, ref: str, dry_run: bool, as_json: bool) -> None:
    """New draft with REF's retryable failures and never-attempted recipients.

    REF must have finished (completed, cancelled or failed). Permanent failures, opted-out
    contacts, possibly-sent recipients and 131049 failures younger than 24 h are left out.
    The draft is sent like any other: `broadcasts start ID`.
    """
    if dry_run:
        with cli_ctx.session() as session:
            broadcast = service.get_broadcast(session, ref)
            selection = follow_ups.select_retry(session, broadcast, resend_wait=resend_wait)
        if as_json:
            emit_json(
                {
                    "recipients": selection.total,
                    "failed": selection.failed,
                    "never_attempted": selection.unsent,
                    "left_out": dict(selection.left_out),
                    "marketing_limit_until": selection.marketing_limit_until,
                }
            )
        else:
            click.echo(f"A retry of '{broadcast.name}' would hold {selection.explain()}")
        return
    with cli_ctx.session() as session:
        result = follow_ups.retry_failed(session, ref, by=cli_ctx.actor, resend_wait=resend_wait)
        data: dict[str, Any] = {
            "id": result.broadcast.id,
            "name": result.broadcast.name,
            "retry_of": result.original.id,
            "recipients": result.selection.total,
            "failed": result.selection.failed,
            "never_attempted": result.selection.unsent,
            "left_out": dict(result.selection.left_out),
            "marketing_limit_until": result.selection.marketing_limit_until,
            "explanation": result.selection.explain(),
        }
    if as_json:
        emit_json(data)
        return
    click.echo(
        f"Created draft '{data['name']}' ({data['id']}), a retry of {data['retry_of'][:8]}: "
        f"{data['explanation']}\nSend it with: broadcast-bot broadcasts start {data['id'][:8]}"
    )


@click.command("duplicate")
@click.argument("ref")
@click.option("--name", help="Name of the copy (default: '<name> (copy)').")
@json_option
@pass_cli
def duplicate(cli_ctx: CliContext, ref: str, name: str | None, as_json: bool) -> None:
    """New draft with REF's configuration, template, pacing and recipients (any status)."""
    with cli_ctx.session() as session:
        result = follow_ups.duplicate_broadcast(session, ref, by=cli_ctx.actor, name=name)
        data: dict[str, Any] = {
            "id": result.broadcast.id,
            "name": result.broadcast.name,
            "copy_of": result.original.id,
            "recipients": result.copied,
            "opted_out": result.opted_out,
        }
    if as_json:
        emit_json(data)
        return
    left = f"; {data['opted_out']} opted-out contacts left out" if data["opted_out"] else ""
    click.echo(
        f"Created draft '{data['name']}' ({data['id']}) with {data['recipients']} recipients{left}."
    )


@click.command("edit")
@click.argument("ref")
@click.option("--name", help="New name.")
@click.option("--template", "template_ref", help="Another approved template: name[:language].")
@click.option(
    "--drop-unfit",
    is_flag=True,
    help="Remove recipients that lack the new template's parameters (default: refuse).",
)
@json_option
@pass_cli
def edit(
    cli_ctx: CliContext,
    ref: str,
    name: str | None,
    template_ref: str | None,
    drop_unfit: bool,
    as_json: bool,
) -> None:
    """Rename draft REF and/or change its template (recipients are checked against it)."""
    with cli_ctx.session() as session:
        result = drafts.edit_draft(
            session,
            ref,
            by=cli_ctx.actor,
            name=name,
            template_ref=template_ref,
            drop_unfit=drop_unfit,
        )
        data: dict[str, Any] = {
            "id": result.broadcast.id,
            "name": result.broadcast.name,
            "template": result.broadcast.template.name,
            "changes": result.changes,
            "removed_unfit": result.removed_unfit,
        }
    if as_json:
        emit_json(data)
        return
    click.echo(f"Broadcast '{data['name']}': " + "; ".join(data["changes"]) + ".")


@click.command("remove-recipients")
@click.argument("ref")
@click.argument("phones", nargs=-1)
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A text file of numbers to remove (one per line, or comma-separated).",
)
@click.option("--import", "import_id", type=int, help="Undo this import (see `imports REF`).")
@click.option("--all", "everyone", is_flag=True, help="Remove every recipient.")
@click.option("--region", help="Region for numbers written without a country code (e.g. GB).")
@json_option
@pass_cli
def remove_recipients(
    cli_ctx: CliContext,
    ref: str,
    phones: tuple[str, ...],
    file: Path | None,
    import_id: int | None,
    everyone: bool,
    region: str | None,
    as_json: bool,
) -> None:
    """Remove recipients of draft REF: by number (PHONES or --file), by import, or --all."""
    raw = list(phones) + ([file.read_text(encoding="utf-8-sig")] if file else [])
    numbers = drafts.parse_phones(raw, region=region) if raw else []
    with cli_ctx.session() as session:
        removal = drafts.remove_recipients(
            session, ref, by=cli_ctx.actor, phones=numbers, import_id=import_id, everyone=everyone
        )
        left = service.get_broadcast(session, ref).total_count
    if as_json:
        emit_json({"removed": removal.removed, "not_found": removal.not_found, "left": left})
        return
    message = f"Removed {removal.removed} recipients; {left} left."
    if removal.not_found:
        message += f" Not in the broadcast: {', '.join(removal.not_found)}."
    click.echo(message)


@click.command("imports")
@click.argument("ref")
@json_option
@pass_cli
def imports(cli_ctx: CliContext, ref: str, as_json: bool) -> None:
    """List REF's imports (files and contact selections) with the recipients each still has."""
    with cli_ctx.session() as session:
        lines = drafts.list_imports(session, service.get_broadcast(session, ref))
    if as_json:
        emit_json([line.__dict__ for line in lines])
        return
    emit_table(
        ["IMPORT", "SOURCE", "FILE", "ADDED", "STILL IN", "BY"],
        [
            [line.id, line.source, line.filename, line.accepted, line.remaining, line.created_by]
            for line in lines
        ],
        empty="No imports yet.",
    )


@click.command("audit")
@click.argument("ref")
@click.option("--limit", type=int, help="Only the last N entries.")
@json_option
@pass_cli
def audit_(cli_ctx: CliContext, ref: str, limit: int | None, as_json: bool) -> None:
    """Who did what to REF, when, from Slack, the CLI or the system."""
    with cli_ctx.session() as session:
        broadcast = service.get_broadcast(session, ref)
        lines = audit.entries(session, broadcast.id, limit=limit)
    if as_json:
        emit_json([line.__dict__ for line in lines])
        return
    emit_table(
        ["WHEN (UTC)", "WHO", "VIA", "WHAT"],
        [[f"{x.at:%Y-%m-%d %H:%M:%S}", x.actor, x.via, x.summary] for x in lines],
        empty="No audit entries.",
    )


def register(cli: click.Group) -> None:
    commands: tuple[Any, ...] = (
        retry_failed,
        duplicate,
        edit,
        remove_recipients,
        imports,
        audit_,
    )
    for command in commands:
        group.add_command(command)
