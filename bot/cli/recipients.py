"""`broadcasts template-csv | upload | add-contacts`: recipients of a broadcast from the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bot.cli.broadcasts import group
from bot.cli.context import CliContext, json_option, pass_cli
from bot.cli.output import emit_json, key_values, write_error_report
from broadcasts import contacts, service
from broadcasts.csv_template import template_csv
from broadcasts.imports import ImportSummary, import_csv
from broadcasts.imports.phones import country_label
from broadcasts.imports.reader import DELIMITER_NAMES
from broadcasts.imports.rows import describe
from broadcasts.models import Template

ENCODING_NAMES = {"utf-8-sig": "UTF-8 with BOM", "utf-8": "UTF-8", "utf-16": "UTF-16 with BOM"}


@click.command("template-csv")
@click.argument("ref")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@pass_cli
def template_csv_command(cli_ctx: CliContext, ref: str, output: Path | None) -> None:
    """Write the CSV template (header) for broadcast REF's template."""
    with cli_ctx.session() as session:
        broadcast = service.get_broadcast(session, ref)
        template = session.get(Template, broadcast.template_id)
        assert template is not None
        text = template_csv(template)
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"Wrote {output} ({text.strip()}).")


@click.command("upload")
@click.argument("ref")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--region",
    help="Default region for numbers without a country code (e.g. GB); "
    "default: PHONE_DEFAULT_REGION.",
)
@click.option(
    "--assume-international",
    is_flag=True,
    help="Read numbers without + or 00 (and not valid in --region) as international numbers "
    "whose + was lost, e.g. 447400123456 → +447400123456. Off: they are refused.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the error report (default: FILE.errors.csv, only if rows were rejected).",
)
@json_option
@pass_cli
def upload(
    cli_ctx: CliContext,
    ref: str,
    file: Path,
    region: str | None,
    assume_international: bool,
    report_path: Path | None,
    as_json: bool,
) -> None:
    """Add the recipients of CSV FILE (phone_number + parameter columns) to draft REF."""
    settings = cli_ctx.runtime.settings
    with file.open("rb") as source:
        summary = import_csv(
            cli_ctx.runtime.sessions,
            ref,
            source,
            filename=file.name,
            region=region or settings.phone_default_region,
            by=cli_ctx.actor,
            max_bytes=settings.csv_max_bytes,
            assume_international=assume_international,
        )
    written = write_error_report(summary.error_report_csv, file, report_path)
    if as_json:
        emit_json({**summary.as_dict(), "report_path": str(written) if written else None})
        return
    click.echo(render_summary(summary))
    if written:
        click.echo(f"\nError report ({summary.rejected} rows): {written}")


def render_summary(s: ImportSummary) -> str:
    pairs: list[tuple[str, Any]] = [
        ("File", s.filename),
        ("Rows read", s.rows),
        ("Accepted", s.accepted),
        ("Invalid", s.invalid),
    ]
    pairs += [(f"  {reason}", count) for reason, count in sorted(s.invalid_by_reason.items())]
    pairs += [
        ("Duplicates", s.duplicates),
        ("Already present", s.already_present),
        ("Opted out", s.opted_out),
        ("Test contacts", s.test_excluded),
        ("Encoding", ENCODING_NAMES.get(s.encoding or "", s.encoding)),
        ("Delimiter", DELIMITER_NAMES.get(s.delimiter or "", s.delimiter)),
        ("Default region", s.region or "none (numbers need a country code)"),
        (
            "Without + or 00",
            "read as international (--assume-international)"
            if s.assume_international
            else "refused unless valid in the default region",
        ),
    ]
    pairs += [
        (f"  {country_label(code)}", count) if i else (f"By country: {country_label(code)}", count)
        for i, (code, count) in enumerate(s.accepted_by_country.items())
    ]
    lines = [key_values(pairs)]
    if s.invalid_by_reason:
        lines.append("")
        lines += [f"{r}: {describe(r)}" for r in sorted(s.invalid_by_reason)]
    return "\n".join(lines)


@click.command("add-contacts")
@click.argument("ref")
@click.option("--all", "all_eligible", is_flag=True, help="Every eligible contact.")
@click.option("--ids", help="Contact ids, comma-separated.")
@click.option("--search", help="Contacts whose name, phone or wa_id matches.")
@json_option
@pass_cli
def add_contacts(
    cli_ctx: CliContext,
    ref: str,
    all_eligible: bool,
    ids: str | None,
    search: str | None,
    as_json: bool,
) -> None:
    """Add contacts to draft REF (test and opted-out contacts are always left out)."""
    id_list = _ids(ids) if ids else None
    with cli_ctx.session() as session:
        summary = contacts.add_contacts_to_broadcast(
            session,
            ref,
            ids=id_list,
            search=search,
            all_eligible=all_eligible,
            by=cli_ctx.actor,
        )
    if as_json:
        emit_json(summary.as_dict())
        return
    click.echo(
        key_values(
            [
                ("Selected", summary.selected),
                ("Added", summary.added),
                ("Already present", summary.already_present),
                ("Test contacts left out", summary.excluded_test),
                ("Opted-out left out", summary.excluded_opted_out),
                ("Missing parameters", summary.missing_params),
            ]
        )
    )
    for example in summary.missing_examples:
        click.echo(f"  {example}")
    if summary.not_found:
        click.echo("Not found: " + ", ".join(str(i) for i in summary.not_found))


def _ids(text: str) -> list[int]:
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise click.BadParameter(
            "ids are numbers separated by commas", param_hint="--ids"
        ) from None


def register(cli: click.Group) -> None:
    group.add_command(template_csv_command)
    group.add_command(upload)
    group.add_command(add_contacts)
