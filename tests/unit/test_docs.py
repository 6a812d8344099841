"""The README and docs/: every link between them lands, every page is reachable from the README,
and the README's test command is the one CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+)$", re.M)


def anchors(markdown: str) -> set[str]:
    """Heading anchors as GitHub makes them: lower case, punctuation dropped, spaces → hyphens."""
    found: set[str] = set()
    for title in HEADING.findall(re.sub(r"```.*?```", "", markdown, flags=re.S)):
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        n, candidate = 0, slug
        while candidate in found:
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found


def local_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_link_lands_on_a_file_and_heading_that_exist(page: Path) -> None:
    broken = []
    for target in local_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file.relative_to(ROOT)}")
        elif anchor and anchor not in anchors(file.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading #{anchor} in {file.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_every_page_in_docs_is_linked_from_the_readme() -> None:
    linked = {t.partition("#")[0] for t in local_links(ROOT / "README.md")}
    orphans = [p.name for p in PAGES[1:] if f"docs/{p.name}" not in linked]
    assert not orphans, f"not linked from README.md: {orphans}"


def test_the_readme_stays_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= 200, f"README.md has {lines} lines; move detail into docs/"


def test_ci_runs_the_test_command_the_readme_gives() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test\b", readme, re.M), "the README's quick start lost `make test`"
    last_command = [line for line in ci.splitlines() if line and not line.startswith("#")][-1]
    assert last_command == "make test"


def test_the_anchor_rule_matches_githubs() -> None:
    text = "## Measured ÷ goal\n## `GET /metrics`\n## Logs\n## Logs\n"
    assert anchors(text) == {"measured--goal", "get-metrics", "logs", "logs-1"}


def test_code_cites_only_documents_that_are_in_the_repository() -> None:
    sources = [
        p
        for folder in ("broadcasts", "kapso", "jobs", "bot", "benchmarks", "migrations", "tests")
        for p in (ROOT / folder).rglob("*.py")
    ]
    missing, outside = [], []
    for source in sources:
        text = source.read_text(encoding="utf-8")
        where = source.relative_to(ROOT)
        cited = re.findall(r"docs/[\w-]+\.md", text)
        missing += [f"{where}: {page}" for page in cited if not (ROOT / page).exists()]
        if re.search(r"DESIGN §|/home/|/Users/", text) and source != Path(__file__):
            outside.append(str(where))
    assert not missing, f"cited pages that do not exist: {missing}"
    assert not outside, f"cite a document outside the repository: {outside}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_repository_path_a_page_names_exists(page: Path) -> None:
    # `bot/slack/authz.py`, `tests/conftest.py`, `.ci/run`…: a file moved without its docs fails.
    named = re.findall(r"`(\.?[a-z_]+/[\w./-]+)`", page.read_text(encoding="utf-8"))
    paths = [p for p in named if (ROOT / p.split("/")[0]).is_dir() and "*" not in p]
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"{page.name} names paths that do not exist: {missing}"
