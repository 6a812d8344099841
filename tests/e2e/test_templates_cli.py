"""`broadcast-bot templates` against the sandbox: sync, re-sync a status change, list, show."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from bot.cli.main import cli
from kapso.sandbox import Sandbox, SandboxConfig, run_sandbox

KEY = {"KAPSO_API_KEY": "sandbox-key"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with run_sandbox(
        SandboxConfig(latency_ms=0, templates_page_max=4, templates_by_waba={"555": []})
    ) as sb:
        yield sb


def invoke(db_url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={"DATABASE_URL": db_url, **KEY, **(env or {})})


def ok(db_url: str, *args: str) -> str:
    result = invoke(db_url, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def fails(db_url: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = invoke(db_url, *args, env=env)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def add_config(db_url: str, sb: Sandbox, name: str = "main", waba: str = "900800700") -> None:
    ok(
        db_url,
        "configs",
        "add",
        name,
        "--provider",
        "sandbox",
        "--phone-number-id",
        "100200300",
        "--waba-id",
        waba,
        "--api-base-url",
        sb.base_url,
    )


def test_sync_then_resync_picks_up_a_status_change(db_url: str, sandbox: Sandbox) -> None:
    sandbox.reset()
    add_config(db_url, sandbox)
    out = ok(db_url, "templates", "sync", "--config", "main")
    assert out.startswith("main: 9 added, 0 updated, 0 unchanged")
    assert "summer_carousel" in out and "CAROUSEL component is not supported" in out

    approved = json.loads(ok(db_url, "templates", "list", "--approved", "--json"))
    names = {t["name"] for t in approved}
    assert names == {
        "hello_world",
        "holiday_promotion",
        "order_update",
        "welcome_offer",
        "appointment_reminder",
    }

    sandbox.set_template_status("holiday_promotion", "PAUSED")
    try:
        out = ok(db_url, "templates", "sync")
    finally:
        sandbox.reset()
    assert "main: 0 added, 1 updated, 8 unchanged" in out
    assert "holiday_promotion:en_US: APPROVED -> PAUSED" in out
    approved = json.loads(ok(db_url, "templates", "list", "--approved", "--json"))
    assert "holiday_promotion" not in {t["name"] for t in approved}
    table = ok(db_url, "templates", "list")
    assert "PAUSED" in table and "PENDING" in table


def test_show_gives_body_parameters_and_csv_header(db_url: str, sandbox: Sandbox) -> None:
    add_config(db_url, sandbox)
    ok(db_url, "templates", "sync")
    shown = json.loads(ok(db_url, "templates", "show", "welcome_offer", "--json"))
    assert shown["parameter_format"] == "NAMED"
    assert shown["csv_header"] == [
        "phone_number",
        "header_image_url",
        "first_name",
        "discount_code",
        "discount",
        "button_0",
    ]
    positional = json.loads(ok(db_url, "templates", "show", "order_update", "--json"))
    assert positional["csv_header"] == [
        "phone_number",
        "header_1",
        "param1",
        "param2",
        "param3",
        "button_0",
    ]
    text = ok(db_url, "templates", "show", "holiday_promotion", "--config", "main")
    assert "CSV header        phone_number,param1" in text
    assert "Hi <1>, check out" in text


def test_a_waba_without_templates_says_so(db_url: str, sandbox: Sandbox) -> None:
    add_config(db_url, sandbox, "bare", waba="555")
    line = fails(db_url, "templates", "sync", "--config", "bare")
    assert "has no message templates" in line and "'bare'" in line


def test_bad_credentials_name_the_config_and_the_variable(db_url: str, sandbox: Sandbox) -> None:
    add_config(db_url, sandbox)
    line = fails(db_url, "templates", "sync", "--config", "main", env={"KAPSO_API_KEY": "expired"})
    assert "error 190" in line and "configuration 'main'" in line and "KAPSO_API_KEY" in line


def test_a_missing_credential_names_the_variable(db_url: str, sandbox: Sandbox) -> None:
    ok(
        db_url,
        "configs",
        "add",
        "live",
        "--provider",
        "kapso",
        "--phone-number-id",
        "1",
        "--waba-id",
        "2",
        "--api-base-url",
        sandbox.base_url,
        "--credential-env",
        "LIVE_KEY",
    )
    line = fails(db_url, "templates", "sync", "--config", "live", env={"LIVE_KEY": ""})
    assert line == (
        "Error: LIVE_KEY is not set: configuration 'live' needs it to call the WhatsApp API."
    )


def test_an_unreachable_api_is_one_clear_line(db_url: str) -> None:
    ok(
        db_url,
        "configs",
        "add",
        "down",
        "--provider",
        "sandbox",
        "--phone-number-id",
        "1",
        "--waba-id",
        "2",
        "--api-base-url",
        "http://127.0.0.1:9/v24.0",
    )
    line = fails(db_url, "templates", "sync", "--config", "down")
    assert "configuration 'down'" in line and "127.0.0.1:9" in line


def test_sandbox_command_serves_until_terminated() -> None:
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    binary = str(Path(sys.executable).with_name("broadcast-bot"))
    process = subprocess.Popen(
        [
            binary,
            "sandbox",
            "--port",
            "0",
            "--latency-ms",
            "0",
            "--throughput",
            "20",
            "--reject",
            "0999=131026",
            "--number-waba",
            "42=555",
            "--empty-waba",
            "555",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("WhatsApp sandbox listening: http://127.0.0.1:")
        base = line.split()[-1]
        root = base.rsplit("/", 1)[0]
        with urllib.request.urlopen(f"{root}/_sandbox/stats", timeout=10) as response:
            assert json.loads(response.read())["accepted"] == 0
        request = urllib.request.Request(
            f"{base}/555/message_templates", headers={"X-API-Key": "sandbox-key"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["data"] == []
    finally:
        process.terminate()
        assert process.wait(20) == 0


def test_configs_read_the_numbers_level_and_tier_and_sync_refreshes_them(
    db_url: str, sandbox: Sandbox
) -> None:
    sandbox.reset()
    add_config(db_url, sandbox)
    (config,) = json.loads(ok(db_url, "configs", "list", "--json"))
    assert (config["throughput_level"], config["messaging_limit"]) == ("STANDARD", "TIER_10K")
    assert (config["throughput_mps"], config["batch_size"], config["batch_pause_seconds"]) == (
        80,
        500,
        10.0,
    )
    table = ok(db_url, "configs", "list")
    assert "LEVEL" in table and "LIMIT" in table and "STANDARD" in table and "TIER_10K" in table

    sandbox.settings(throughput=1000, messaging_limit="TIER_250")
    try:
        out = ok(db_url, "templates", "sync", "--config", "main")
    finally:
        sandbox.settings(throughput=80, messaging_limit="TIER_10K")
    assert "number: throughput HIGH (1000/s), messaging limit TIER_250" in out
    assert "messaging limit TIER_10K → TIER_250" in out
    (config,) = json.loads(ok(db_url, "configs", "list", "--json"))
    assert (config["throughput_mps"], config["messaging_limit"]) == (1000, "TIER_250")
    # Back to STANDARD: the rate follows the level down; the tier is refreshed on demand too.
    sandbox.settings(messaging_limit="TIER_UNLIMITED")
    try:
        refreshed = ok(db_url, "configs", "refresh", "main")
    finally:
        sandbox.settings(messaging_limit="TIER_10K")
    assert refreshed.startswith("main: throughput STANDARD (80/s), messaging limit TIER_UNLIMITED")
    assert "messaging limit TIER_250 → TIER_UNLIMITED" in refreshed
    assert "rate 1000/s → 80/s" in refreshed


def test_a_number_whose_limits_cannot_be_read_starts_at_the_seeds_rate(db_url: str) -> None:
    result = invoke(
        db_url,
        "configs",
        "add",
        "offline",
        "--provider",
        "sandbox",
        "--phone-number-id",
        "100200300",
        "--waba-id",
        "900800700",
        "--api-base-url",
        "http://127.0.0.1:9/v24.0",
    )
    assert result.exit_code == 0, result.output
    assert "Could not read the number's throughput and messaging limit" in result.stdout
    assert "the rate stays 50/s" in result.stdout
    (config,) = json.loads(ok(db_url, "configs", "list", "--json"))
    assert (config["throughput_mps"], config["throughput_level"]) == (50, None)
