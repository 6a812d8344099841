"""`broadcast-bot contacts`: the contact list (import, list, sync, test and opt-out flags)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from bot.cli.context import CliContext, json_option, pass_cli
from bot.cli.output import emit_json, emit_table, key_values, write_error_report
from broadcasts import contacts as service
from broadcasts.imports.contacts_file import import_contacts
from broadcasts.models import Contact


def contact_dict(c: Contact) -> dict[str, Any]:
    return {
        "id": c.id,
        "phone": c.phone,
        "wa_id": c.wa_id,
        "user_id": c.user_id,
        "username": c.username,
        "name": c.name,
        "attributes": c.attributes,
        "is_test": c.is_test,
        "opted_out_at": c.opted_out_at,
        "opt_out_reason": c.opt_out_reason,
        "source": c.source,
    }


@click.group("contacts")
def group() -> None:
    """The contact list: import, list, sync from Kapso, test and opt-out flags."""


@group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--region", help="Default region for numbers without a country code.")
@click.option(
    "--assume-international",
    is_flag=True,
    help="Read numbers without + or 00 as international numbers whose + was lost.",
)
@click.option("--test", "is_test", is_flag=True, help="Flag every contact of the file as test.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@pass_cli
def import_(
    cli_ctx: CliContext,
    file: Path,
    region: str | None,
    assume_international: bool,
    is_test: bool,
    report_path: Path | None,
    as_json: bool,
) -> None:
    """Add or update the contacts of CSV FILE (other columns become attributes)."""
    settings = cli_ctx.runtime.settings
    with file.open("rb") as source:
        summary = import_contacts(
            cli_ctx.runtime.sessions,
            source,
            region=region or settings.phone_default_region,
            is_test=is_test,
            max_bytes=settings.csv_max_bytes,
            assume_international=assume_international,
        )
    written = write_error_report(summary.error_report_csv, file, report_path)
    if as_json:
        emit_json({**summary.as_dict(), "report_path": str(written) if written else None})
        return
    pairs: list[tuple[str, Any]] = [
        ("Rows read", summary.rows),
        ("Created", summary.created),
        ("Updated", summary.updated),
        ("Invalid", summary.invalid),
    ]
    pairs += [(f"  {r}", n) for r, n in sorted(summary.invalid_by_reason.items())]
    pairs += [
        ("Encoding", summary.encoding),
        ("Delimiter", repr(summary.delimiter)),
        ("Region", summary.region or "none"),
    ]
    click.echo(key_values(pairs))
    if written:
        click.echo(f"\nError report: {written}")


@group.command("list")
@click.option("--search", help="Name, phone digits or wa_id.")
@click.option("--eligible", is_flag=True, help="Only contacts a broadcast may go to.")
@click.option("--limit", type=int, default=50, show_default=True)
@json_option
@pass_cli
def list_(
    cli_ctx: CliContext, search: str | None, eligible: bool, limit: int, as_json: bool
) -> None:
    """List contacts."""
    with cli_ctx.session() as session:
        rows = [
            contact_dict(c)
            for c in service.list_contacts(
                session, search=search, eligible_only=eligible, limit=limit
            )
        ]
        eligible_total = service.count_eligible(session, search)
    if as_json:
        emit_json(rows)
        return
    emit_table(
        ["ID", "PHONE", "NAME", "TEST", "OPTED OUT", "SOURCE", "ATTRIBUTES"],
        [
            [
                r["id"],
                r["phone"] or r["username"] or r["user_id"],
                r["name"],
                "yes" if r["is_test"] else "",
                r["opted_out_at"] or "",
                r["source"],
                ", ".join(f"{k}={v}" for k, v in (r["attributes"] or {}).items())[:60],
            ]
            for r in rows
        ],
        empty="No contacts: broadcast-bot contacts import FILE or contacts sync --config NAME",
    )
    click.echo(f"\n{eligible_total} eligible (not test, not opted out).")


@group.command("sync")
@click.option("--config", "config_ref", required=True, help="WhatsApp configuration (name or id).")
@json_option
@pass_cli
def sync(cli_ctx: CliContext, config_ref: str, as_json: bool) -> None:
    """Fetch the number's existing WhatsApp contacts from Kapso (re-runnable, upserting)."""
    from jobs.contacts_sync import sync_contacts

    result = sync_contacts(cli_ctx.runtime, config_ref)
    if as_json:
        emit_json(asdict(result))
        return
    click.echo(
        f"Fetched {result.fetched} contacts of '{config_ref}': {result.created} new, "
        f"{result.updated} updated, {result.skipped} skipped (no usable wa_id)."
    )


@group.command("mark-test")
@click.argument("phone")
@click.option("--off", is_flag=True, help="Make it an ordinary contact again.")
@pass_cli
def mark_test(cli_ctx: CliContext, phone: str, off: bool) -> None:
    """Flag PHONE as a test contact (never added to broadcasts)."""
    with cli_ctx.session() as session:
        contact = service.mark_test(session, phone, not off)
        click.echo(
            f"{contact.phone or contact.user_id} is {'not ' if off else ''}a test contact now."
        )


@group.command("opt-out")
@click.argument("phone")
@click.option("--reason", default="opted out (operator)", show_default=True)
@pass_cli
def opt_out(cli_ctx: CliContext, phone: str, reason: str) -> None:
    """Record that PHONE opted out: it is left out of every import and selection."""
    with cli_ctx.session() as session:
        contact = service.set_opt_out(session, phone, True, reason)
        click.echo(f"{contact.phone or contact.user_id} opted out ({reason}).")


@group.command("opt-in")
@click.argument("phone")
@pass_cli
def opt_in(cli_ctx: CliContext, phone: str) -> None:
    """Clear PHONE's opt-out (only when the person asked to receive messages again)."""
    with cli_ctx.session() as session:
        contact = service.set_opt_out(session, phone, False)
        click.echo(f"{contact.phone or contact.user_id} may receive broadcasts again.")


def register(cli: click.Group) -> None:
    cli.add_command(group)
