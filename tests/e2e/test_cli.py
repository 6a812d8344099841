"""The operator CLI as a user runs it: a real `broadcast-bot` process on real databases."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from bot.cli.main import cli

BIN = str(Path(sys.executable).with_name("broadcast-bot"))


def run(
    db_url: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A real `broadcast-bot` process (slow to start: used where the process itself matters)."""
    full_env = {**os.environ, "DATABASE_URL": db_url, **(env or {})}
    return subprocess.run(
        [BIN, *args], capture_output=True, text=True, env=full_env, timeout=60, check=False
    )


def invoke(db_url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    """The same command line in-process through Click's runner."""
    return CliRunner().invoke(cli, list(args), env={"DATABASE_URL": db_url, **(env or {})})


def ok(db_url: str, *args: str) -> str:
    result = invoke(db_url, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def fails(db_url: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = invoke(db_url, *args, env=env)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_real_process_prints_help_and_one_line_errors(tmp_path: Path) -> None:
    result = run(f"sqlite:///{tmp_path / 'p.db'}", "--help")
    assert result.returncode == 0 and "broadcasts" in result.stdout
    result = run(f"sqlite:///{tmp_path / 'p.db'}", "configs", "list")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: The database has no tables yet: run `broadcast-bot migrate` first."
    )


def test_help_lists_every_command(db_url: str) -> None:
    out = ok(db_url, "--help")
    for command in ("migrate", "configs", "agents", "broadcasts", "demo"):
        assert command in out
    assert "set-agent" in ok(db_url, "configs", "--help")


def test_operator_flow_from_config_to_draft_broadcast(db_url: str) -> None:
    ok(db_url, "migrate")
    ok(
        db_url,
        "agents",
        "add",
        "support",
        "--url",
        "https://agents.example.com/agent",
        "--secret-env",
        "AGENT_SECRET",
    )
    out = ok(
        db_url,
        "configs",
        "add",
        "main",
        "--provider",
        "sandbox",
        "--phone-number-id",
        "1001",
        "--waba-id",
        "2002",
        "--throughput",
        "120",
    )
    assert "Next: give it a primary agent" in out
    ok(db_url, "configs", "set-agent", "main", "support")
    configs = json.loads(ok(db_url, "configs", "list", "--json"))
    assert configs[0]["primary_agent"] == "support"
    assert configs[0]["credential_env"] == "KAPSO_API_KEY"
    assert configs[0]["api_base_url"].startswith("http://127.0.0.1")
    table = ok(db_url, "configs", "list")
    assert table.splitlines()[0].split()[:2] == ["NAME", "PROVIDER"]

    # Templates come from a sync (WhatsApp issue); seed one through the same upsert.
    from broadcasts.configs import get_config
    from broadcasts.db import make_engine, make_session_factory, transaction
    from broadcasts.templates import upsert_templates
    from tests.factories import POSITIONAL

    engine = make_engine(db_url)
    with transaction(make_session_factory(engine)) as s:
        upsert_templates(s, get_config(s, "main"), [POSITIONAL])
    engine.dispose()

    created = json.loads(
        ok(
            db_url,
            "broadcasts",
            "new",
            "Holiday Sale",
            "--config",
            "main",
            "--template",
            "holiday_promotion",
            "--json",
        )
    )
    assert created["status"] == "draft"
    assert created["agent"] == "support"
    listing = ok(db_url, "broadcasts", "list")
    assert "Holiday Sale" in listing and "draft" in listing
    shown = ok(db_url, "broadcasts", "show", created["id"][:8])
    assert "Total recipients" in shown and "Response rate" in shown
    assert (
        json.loads(ok(db_url, "broadcasts", "show", "Holiday Sale", "--json"))["id"]
        == created["id"]
    )


def test_errors_are_one_line_without_traceback(db_url: str) -> None:
    ok(db_url, "migrate")
    assert "No WhatsApp configuration 'nope'" in fails(
        db_url, "broadcasts", "new", "x", "--config", "nope", "--template", "t"
    )
    assert "has no primary agent" in _config_without_agent(db_url)
    assert "NAME of an environment variable" in fails(
        db_url,
        "configs",
        "add",
        "leaky",
        "--phone-number-id",
        "1",
        "--waba-id",
        "2",
        "--credential-env",
        "EAAG-secret-token-value",
    )
    assert fails(db_url, "broadcasts", "show", "missing") == (
        "Error: No broadcast 'missing'. `broadcast-bot broadcasts list` shows them."
    )


def _config_without_agent(db_url: str) -> str:
    ok(
        db_url,
        "configs",
        "add",
        "bare",
        "--provider",
        "sandbox",
        "--phone-number-id",
        "1",
        "--waba-id",
        "2",
    )
    from broadcasts.configs import get_config
    from broadcasts.db import make_engine, make_session_factory, transaction
    from broadcasts.templates import upsert_templates
    from tests.factories import POSITIONAL

    engine = make_engine(db_url)
    with transaction(make_session_factory(engine)) as s:
        upsert_templates(s, get_config(s, "bare"), [POSITIONAL])
    engine.dispose()
    return fails(
        db_url, "broadcasts", "new", "x", "--config", "bare", "--template", "holiday_promotion"
    )


def test_unmigrated_database_says_to_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert fails(url, "configs", "list") == (
        "Error: The database has no tables yet: run `broadcast-bot migrate` first."
    )


def test_malformed_setting_stops_with_its_name(tmp_path: Path) -> None:
    line = fails(f"sqlite:///{tmp_path / 'x.db'}", "migrate", env={"PORT": "abc"})
    assert line.startswith("Error: PORT is invalid")


def test_demo_sends_a_sandbox_broadcast_end_to_end(tmp_path: Path, redis_url: str) -> None:
    """`make demo` in small: real processes, the sample's kinds of bad rows, replies, report."""
    sample = tmp_path / "small.csv"
    lines = ["phone_number,param1"] + [f"+44740010{i:04d},Ana" for i in range(40)]
    lines += ["4.474E+11,Excel", "+447400100001,Duplicate"]
    sample.write_text("\n".join(lines) + "\n")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "REDIS_URL": redis_url,
    }
    result = subprocess.run(
        [BIN, "demo", "--csv", str(sample), "--report", str(tmp_path / "report.csv")],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "phone_scientific" in out
    assert re.search(r"Duplicates\s+1\n", out)
    assert "completed — the seed's metrics" in out
    assert re.search(r"Total recipients\s+40\n", out)
    assert re.search(r"Sent\s+40\n", out)
    assert "with broadcast context (signatures checked; 0 bad)" in out
    assert (tmp_path / "report.csv").read_text().count("\n") == 41
    assert "its processes are stopped" in out
