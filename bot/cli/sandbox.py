"""`broadcast-bot sandbox`: a local WhatsApp Cloud API that sends webhooks back."""

from __future__ import annotations

import os
from typing import Any, cast

import click

from kapso.sandbox import Sandbox, SandboxConfig, serve
from kapso.settings import SANDBOX_API_KEY


def _rules(values: tuple[str, ...], option: str) -> dict[str, int]:
    rules: dict[str, int] = {}
    for value in values:
        suffix, _, code = value.partition("=")
        if not suffix.isdigit() or not code.isdigit():
            raise click.BadParameter(
                f"'{value}' is not SUFFIX=CODE (e.g. 026=131026)", param_hint=option
            )
        rules[suffix] = int(code)
    return rules


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8081, show_default=True, help="0 picks a free port.")
@click.option(
    "--api-key", default=SANDBOX_API_KEY, show_default=True, help="Key clients must send."
)
@click.option("--latency-ms", type=float, default=150.0, show_default=True)
@click.option(
    "--latency-jitter",
    type=float,
    default=0.2,
    show_default=True,
    help="Each response waits latency × U(1-j, 1+j).",
)
@click.option("--throughput", type=int, default=80, show_default=True, help="Sends/s per number.")
@click.option(
    "--number-throughput",
    multiple=True,
    metavar="PHONE_NUMBER_ID=MPS",
    help="Per-number throughput (repeatable).",
)
@click.option("--no-pair-rate", is_flag=True, help="Do not refuse repeat sends with 131056.")
@click.option("--pair-rate-seconds", type=float, default=6.0, show_default=True)
@click.option(
    "--number-waba",
    multiple=True,
    metavar="PHONE_NUMBER_ID=WABA_ID",
    help="The WABA whose templates a number sends (default 900800700; repeatable).",
)
@click.option(
    "--display-number",
    "display_phone_number",
    default="+1 555-010-0300",
    show_default=True,
    help="The number in webhooks' metadata.",
)
@click.option("--webhook-url", help="Where to POST status and reply webhooks (none: no webhooks).")
@click.option(
    "--webhook-format", type=click.Choice(["meta", "kapso"]), default="meta", show_default=True
)
@click.option(
    "--app-secret",
    help="Signs Meta-format webhooks [default: $WHATSAPP_APP_SECRET or sandbox-app-secret].",
)
@click.option(
    "--kapso-secret",
    help="Signs Kapso-format webhooks [default: $KAPSO_WEBHOOK_SECRET or sandbox-kapso-secret].",
)
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Divides status and reply delays (10 = ten times faster).",
)
@click.option("--reply-rate", type=float, default=0.1, show_default=True)
@click.option("--read-rate", type=float, default=0.7, show_default=True)
@click.option(
    "--button-reply-share",
    type=float,
    default=0.5,
    show_default=True,
    help="Of replies, taps on a quick-reply button (when the template has one).",
)
@click.option(
    "--quote-rate",
    type=float,
    default=0.5,
    show_default=True,
    help="Of text replies, those quoting the template's wamid.",
)
@click.option("--duplicate-rate", type=float, default=0.05, show_default=True)
@click.option("--out-of-order-rate", type=float, default=0.05, show_default=True)
@click.option(
    "--fail",
    "failures",
    multiple=True,
    metavar="SUFFIX=CODE",
    help="Numbers ending in SUFFIX fail later by webhook with CODE "
    "[default: 026=131026 049=131049 050=131050].",
)
@click.option(
    "--reject",
    "rejects",
    multiple=True,
    metavar="SUFFIX=CODE",
    help="Numbers ending in SUFFIX are refused at send time with CODE.",
)
@click.option("--batch-max", type=int, default=100, show_default=True)
@click.option("--batch-interval-ms", type=float, default=200.0, show_default=True)
@click.option("--webhook-retries", type=int, default=5, show_default=True)
@click.option("--templates-page-max", type=int, default=100, show_default=True)
@click.option(
    "--contacts",
    type=int,
    default=30,
    show_default=True,
    help="Contacts in Kapso's list per number.",
)
@click.option(
    "--empty-waba",
    "empty_wabas",
    multiple=True,
    metavar="WABA_ID",
    help="A WhatsApp Business Account with no templates (repeatable).",
)
@click.option("--seed", type=int, default=1234, show_default=True)
def sandbox(**options: object) -> None:
    """Run a local WhatsApp API (Kapso/Meta compatible) for the demo, tests and benchmarks."""
    per_number = _rules(tuple(options.pop("number_throughput")), "--number-throughput")  # type: ignore[arg-type]
    failures = _rules(tuple(options.pop("failures")), "--fail")  # type: ignore[arg-type]
    rejects = _rules(tuple(options.pop("rejects")), "--reject")  # type: ignore[arg-type]
    pair_rate = not options.pop("no_pair_rate")
    numbers = {}
    for value in cast(tuple[str, ...], options.pop("number_waba")):
        number, _, waba = value.partition("=")
        if not number or not waba:
            raise click.BadParameter(
                f"'{value}' is not PHONE_NUMBER_ID=WABA_ID", param_hint="--number-waba"
            )
        numbers[number] = waba
    empty: dict[str, list[dict[str, Any]]] = {
        str(w): [] for w in cast(tuple[str, ...], options.pop("empty_wabas"))
    }
    config = SandboxConfig(**options)  # type: ignore[arg-type]
    config.app_secret = str(
        options.get("app_secret")
        or os.environ.get("WHATSAPP_APP_SECRET")
        or SandboxConfig.app_secret
    )
    config.kapso_secret = str(
        options.get("kapso_secret")
        or os.environ.get("KAPSO_WEBHOOK_SECRET")
        or SandboxConfig.kapso_secret
    )
    config.throughput_per_number = per_number
    config.pair_rate = pair_rate
    config.templates_by_waba = empty
    config.numbers = numbers
    config.reject_rules = dict(rejects)
    if failures:
        config.failure_rules = failures

    def ready(sb: Sandbox) -> None:
        click.echo(
            f"WhatsApp sandbox listening: {sb.base_url}",
        )
        click.echo(f"  API key: {config.api_key}   admin: {sb.root}/_sandbox/stats")
        target = config.webhook_url or "nowhere (no --webhook-url)"
        click.echo(
            f"  webhooks ({config.webhook_format}) to {target}",
        )

    serve(config, ready)


def register(cli: click.Group) -> None:
    cli.add_command(sandbox)
