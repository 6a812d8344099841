"""`broadcast-bot templates`: sync templates from WhatsApp, list them, show one."""

from __future__ import annotations

from typing import Any

import click

from bot.cli.context import CliContext, json_option, pass_cli
from bot.cli.output import emit_json, emit_table, key_values
from broadcasts import configs as config_service
from broadcasts import templates as template_service
from broadcasts.errors import BroadcastBotError
from broadcasts.models import Template
from jobs.whatsapp_sync import TemplateSyncResult, sync_templates
from kapso.templates import csv_header, render_body


def template_dict(template: Template) -> dict[str, Any]:
    names = [str(n) for n in template.parameter_names or []]
    return {
        "id": template.id,
        "config": template.config.name,
        "name": template.name,
        "language": template.language,
        "category": template.category,
        "status": template.status,
        "status_reason": template.status_reason,
        "parameter_format": template.parameter_format,
        "parameter_names": names,
        "csv_header": csv_header(names),
        "body_text": template.body_text,
        "components": template.components,
        "synced_at": template.synced_at,
    }


@click.group("templates")
def group() -> None:
    """WhatsApp message templates (synced from each configuration's WABA)."""


def _sync_line(name: str, result: TemplateSyncResult) -> list[str]:
    lines = [
        f"{name}: {result.added} added, {result.updated} updated, {result.unchanged} unchanged"
    ]
    lines += [f"  {ref}: {old} -> {new}" for ref, old, new in result.status_changes]
    lines += [f"  skipped {reason}" for _name, reason in result.skipped]
    if result.limits is not None:
        changed = f" (changed: {'; '.join(result.limits.changes)})" if result.limits.changes else ""
        lines.append(f"  number: {result.limits.describe()}{changed}")
    elif result.limits_error:
        lines.append(f"  number limits not refreshed: {result.limits_error}")
    return lines


@group.command("sync")
@click.option("--config", "config_ref", help="One configuration (default: every one).")
@json_option
@pass_cli
def sync(cli_ctx: CliContext, config_ref: str | None, as_json: bool) -> None:
    """Fetch every template of the configuration's WhatsApp Business Account and store it."""
    with cli_ctx.session() as session:
        if config_ref:
            names = [config_service.get_config(session, config_ref).name]
        else:
            names = [c.name for c in config_service.list_configs(session)]
    if not names:
        raise click.ClickException(
            "No WhatsApp configuration yet: add one with `broadcast-bot configs add`."
        )
    results: dict[str, Any] = {}
    failures: list[str] = []
    for name in names:
        try:
            result = sync_templates(cli_ctx.runtime, name)
        except BroadcastBotError as exc:
            if len(names) == 1:
                raise
            failures.append(f"{name}: {exc}")
            results[name] = {"error": str(exc)}
            continue
        results[name] = {
            "added": result.added,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "status_changes": [list(c) for c in result.status_changes],
            "skipped": [list(s) for s in result.skipped],
            "throughput_level": result.limits.throughput_level if result.limits else None,
            "throughput_mps": result.limits.throughput_mps if result.limits else None,
            "messaging_limit": result.limits.messaging_limit if result.limits else None,
            "limits_error": result.limits_error,
        }
        if not as_json:
            click.echo("\n".join(_sync_line(name, result)))
    if as_json:
        emit_json(results)
    if failures:
        raise click.ClickException("; ".join(failures))


@group.command("list")
@click.option("--config", "config_ref", help="One configuration (default: every one).")
@click.option("--approved", is_flag=True, help="Only APPROVED templates (the ones you can send).")
@json_option
@pass_cli
def list_(cli_ctx: CliContext, config_ref: str | None, approved: bool, as_json: bool) -> None:
    """List stored templates."""
    with cli_ctx.session() as session:
        configs = (
            [config_service.get_config(session, config_ref)]
            if config_ref
            else config_service.list_configs(session)
        )
        rows = [
            template_dict(t)
            for c in configs
            for t in template_service.list_templates(session, c, approved_only=approved)
        ]
    if as_json:
        emit_json(rows)
        return
    emit_table(
        ["CONFIG", "NAME", "LANGUAGE", "CATEGORY", "STATUS", "FORMAT", "PARAMETERS"],
        [
            [
                r["config"],
                r["name"],
                r["language"],
                r["category"],
                r["status"],
                r["parameter_format"],
                ", ".join(r["parameter_names"]) or "-",
            ]
            for r in rows
        ],
        empty="No templates yet: run `broadcast-bot templates sync`.",
    )


@group.command("show")
@click.argument("name")
@click.option("--config", "config_ref", help="The configuration (needed when there are several).")
@json_option
@pass_cli
def show(cli_ctx: CliContext, name: str, config_ref: str | None, as_json: bool) -> None:
    """Show template NAME (or NAME:LANGUAGE): body, parameters, CSV header, components."""
    with cli_ctx.session() as session:
        if config_ref:
            config = config_service.get_config(session, config_ref)
        else:
            configs = config_service.list_configs(session)
            if len(configs) != 1:
                known = ", ".join(c.name for c in configs) or "none yet"
                raise click.ClickException(
                    f"Say which configuration with --config (known: {known})."
                )
            config = configs[0]
        data = template_dict(template_service.find_template(session, config, name))
    if as_json:
        emit_json(data)
        return
    example = {n: f"<{n}>" for n in data["parameter_names"]}
    click.echo(
        key_values(
            [
                ("Template", f"{data['name']} ({data['language']})"),
                ("Configuration", data["config"]),
                ("Category", data["category"]),
                ("Status", data["status"] + (f" ({r})" if (r := data["status_reason"]) else "")),
                ("Parameter format", data["parameter_format"]),
                ("Parameters", ", ".join(data["parameter_names"]) or "none"),
                ("CSV header", ",".join(data["csv_header"])),
                ("Synced", data["synced_at"]),
            ]
        )
    )
    click.echo(
        f"\nBody:\n  {data['body_text']}\n\nPreview:\n  {render_body(data['body_text'], example)}"
    )
    click.echo("\nComponents:")
    for component in data["components"]:
        kind = str(component.get("type", "?")).upper()
        detail = component.get("text") or component.get("format") or ""
        if kind == "BUTTONS":
            detail = ", ".join(
                f"{b.get('type')}: {b.get('text', b.get('example', ''))}"
                for b in component.get("buttons", [])
            )
        click.echo(f"  {kind}: {detail}")


def register(cli: click.Group) -> None:
    cli.add_command(group)
