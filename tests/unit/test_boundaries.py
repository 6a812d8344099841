"""Which package may know which: the domain knows no adapter, and production processes never load
the sandbox (a local simulator for demos and tests)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_domain_imports_no_adapter_and_no_provider() -> None:
    offending = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / "broadcasts").rglob("*.py")
        for name in _imported(path)
        if name.split(".")[0] in ("bot", "jobs", "kapso", "slack_sdk", "slack_bolt", "httpx", "rq")
    }
    assert not offending


def test_the_domain_names_no_slack_markup_and_no_cli_command() -> None:
    for path in (ROOT / "broadcasts").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "<@" not in text, path  # mentions are Slack's to write (bot/slack/blocks/kit.py)
        for line in text.splitlines():
            if not line.lstrip().startswith("#") and '"""' not in line:
                assert "`broadcast-bot " not in line, f"{path}: {line.strip()}"


def test_web_and_worker_processes_never_load_the_sandbox() -> None:
    code = (
        "import sys, bot.http.app, jobs.worker, jobs.broadcast_control, bot.slack.flows\n"
        "print(sorted(m for m in sys.modules if m.startswith('kapso.sandbox')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "[]"
