"""CSV import throughput: a generated 1,000,000-row file into SQLite and into PostgreSQL.

Each import runs in a child process so its peak RSS (ru_maxrss) is the importer's alone (the
processes it starts to check rows are measured apart). Printed: rows/s end to end (reading,
checking, writing, report), peak RSS, CPU seconds per 1,000 rows of each process (importer,
checking workers, PostgreSQL backend) and the ratios to the goals (60,000 rows/s, 200 MB).
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import event

from benchmarks import summary as summary_rows

ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "1000000"))
GOAL_ROWS_PER_S = 60_000
GOAL_RSS_MB = 200
POSTGRES_ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# (prefix, digits after it): GB, DE, BR, IN mobiles and US numbers, all valid ranges.
PREFIXES = (("+4474", 8), ("+4475", 8), ("+49151", 8), ("+55119", 8), ("+9198", 8), ("+14152", 6))


def generate(path: Path, rows: int, seed: int = 7) -> dict[str, int]:
    """phone_number,param1,param2 with ~5% invalid rows and ~2% duplicates."""
    rng = random.Random(seed)
    kinds = {"valid": 0, "no_plus": 0, "invalid": 0, "duplicate": 0}
    recent: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone_number,param1,param2\r\n")
        for i in range(rows):
            roll = rng.random()
            if roll < 0.05:
                kinds["invalid"] += 1
                bad = rng.choice(("4.47E+11", "+44 74O0 123456", "12345", "", "+44740012"))
                out.write(f"{bad},Ana,{i}\r\n")
                continue
            if roll < 0.07 and recent:
                kinds["duplicate"] += 1
                out.write(f"{rng.choice(recent)},Dup,{i}\r\n")
                continue
            prefix, digits = PREFIXES[i % len(PREFIXES)]
            phone = prefix + f"{i:0{digits}d}"[-digits:]
            if len(recent) < 1000:
                recent.append(phone)
            else:
                recent[i % 1000] = phone
            if roll > 0.92:
                kinds["no_plus"] += 1
                phone = phone[1:]
            else:
                kinds["valid"] += 1
            out.write(f"{phone},Customer {i % 977},CODE{i}\r\n")
    return kinds


def prepare(url: str) -> str:
    """Migrate `url` and create a draft broadcast of a two-parameter template; returns its id."""
    from broadcasts import configs, service
    from broadcasts.actors import Actor
    from broadcasts.db import make_engine, make_session_factory, transaction
    from broadcasts.templates import TemplateData, upsert_templates
    from kapso.settings import provider_defaults
    from migrations import run_upgrade

    run_upgrade(url)
    engine = make_engine(url)
    by = Actor.system()
    with transaction(make_session_factory(engine)) as session:
        configs.add_agent(
            session,
            name="bench",
            kind="webhook",
            url="http://127.0.0.1:9/",
            by=by,
            allow_private_urls=True,
        )
        config = configs.add_config(
            session,
            name="bench",
            provider="sandbox",
            phone_number_id="1",
            business_account_id="1",
            agent="bench",
            by=by,
            **provider_defaults("sandbox"),
        )
        upsert_templates(
            session,
            config,
            [
                TemplateData(
                    name="bench",
                    language="en",
                    category="MARKETING",
                    status="APPROVED",
                    parameter_format="POSITIONAL",
                    parameter_names=["1", "2"],
                    body_text="Hi {{1}}, your code is {{2}}.",
                )
            ],
        )
        broadcast = service.create_broadcast(
            session, name="bench", config_ref="bench", template_ref="bench", by=by
        )
        broadcast_id = broadcast.id
    engine.dispose()
    return broadcast_id


def child(url: str, broadcast_id: str, path: str) -> None:
    """Run one import and print its figures as JSON (this process's peak RSS included)."""
    from broadcasts.actors import Actor
    from broadcasts.db import make_engine, make_session_factory, transaction
    from broadcasts.imports import import_csv
    from broadcasts.metrics import recount, stored_counts
    from broadcasts.models import Broadcast

    engine = make_engine(url)
    backends: set[int] = set()
    if engine.dialect.name == "postgresql":

        @event.listens_for(engine, "connect")
        def remember(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                backends.add(cursor.fetchone()[0])

    sessions = make_session_factory(engine)
    cpu_before = _own_cpu()
    main_before = time.thread_time()
    started = time.perf_counter()
    with open(path, "rb") as source:
        summary = import_csv(
            sessions,
            broadcast_id,
            source,
            filename="bench.csv",
            region=None,
            by=Actor.system(),
            max_bytes=1024**3,
        )
    seconds = time.perf_counter() - started
    client_cpu = _own_cpu() - cpu_before
    main_cpu = time.thread_time() - main_before
    server_cpu = sum(_process_cpu(pid) for pid in backends)
    with transaction(sessions) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        counters_ok = recount(session, broadcast_id) == stored_counts(broadcast)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)  # the checking workers, joined
    print(
        json.dumps(
            {
                "seconds": seconds,
                "summary": summary.as_dict(),
                "peak_rss_mb": peak_kb / 1024,
                "counters_equal_recount": counters_ok,
                "client_cpu_s": client_cpu,
                "main_cpu_s": main_cpu,
                "server_cpu_s": server_cpu,
                "workers_cpu_s": workers.ru_utime + workers.ru_stime,
                "workers_peak_rss_mb": workers.ru_maxrss / 1024,
            }
        )
    )


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pid: int) -> float:
    """CPU seconds of a local process (a PostgreSQL backend serving the import)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child(url: str, broadcast_id: str, path: Path) -> dict[str, Any]:
    load = os.getloadavg()[0]
    done = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "benchmarks.bench_import", "--child", url, broadcast_id, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "load": load}


def fresh_postgres() -> tuple[str, str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"bench_import_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    return name, url


def drop_postgres(name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def report(label: str, figures: dict[str, Any]) -> None:
    summary = figures["summary"]
    seconds = float(figures["seconds"])
    rows = int(summary["rows"])
    rate = rows / seconds
    rss = float(figures["peak_rss_mb"])
    worker_rss = float(figures["workers_peak_rss_mb"])
    print(
        f"{label:<10} {rows:>9,} rows in {seconds:6.1f} s = {rate:>8,.0f} rows/s "
        f"({rate / GOAL_ROWS_PER_S:.2f}× the {GOAL_ROWS_PER_S:,}/s goal); "
        f"peak RSS {rss:.0f} MB ({rss / GOAL_RSS_MB:.2f}× the {GOAL_RSS_MB} MB cap)"
        + (f", each checking worker ≤ {worker_rss:.0f} MB" if worker_rss else "")
    )
    client = float(figures["client_cpu_s"])
    main = float(figures["main_cpu_s"])
    server = float(figures["server_cpu_s"])
    workers = float(figures["workers_cpu_s"])
    total = client + server + workers
    print(
        f"{'':<10} CPU: importer {client:.1f} s (main thread {main:.1f} s), checking workers "
        f"{workers:.1f} s"
        + (f", PostgreSQL backend {server:.1f} s" if server else "")
        + f"; total {total:.1f} s → at most {rows / (total / 2):,.0f} rows/s on 2 free cores "
        f"(load average at start {figures['load']:.1f} on {os.cpu_count()} cores)"
    )
    print(
        f"{'':<10} accepted {summary['accepted']:,}, invalid {summary['invalid']:,}, "
        f"duplicates {summary['duplicates']:,}, counters = recount: "
        f"{figures['counters_equal_recount']}"
    )
    per_1000 = {"importer": client * 1000 / rows}
    if workers:
        per_1000["checking workers"] = workers * 1000 / rows
    if server:
        per_1000["PostgreSQL backend"] = server * 1000 / rows
    memory = {"importer": rss} | ({"each checking worker": worker_rss} if worker_rss else {})
    what = f"CSV import, {rows:,} rows"
    ok = "counters = recount" if figures["counters_equal_recount"] else "COUNTERS ≠ RECOUNT"
    note = f"{ok}; load {figures['load']:.1f} at start"
    summary_rows.record(
        summary_rows.Row(what, label, rate, GOAL_ROWS_PER_S, "rows/s", True, per_1000, memory, note)
    )
    summary_rows.record(
        summary_rows.Row(
            what + ", peak RSS", label, rss, GOAL_RSS_MB, "MB", False, {}, memory, "importer"
        )
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.csv"
        started = time.perf_counter()
        kinds = generate(path, ROWS)
        size_mb = path.stat().st_size / 1024 / 1024
        print(
            f"generated {ROWS:,} rows ({size_mb:.0f} MB) in {time.perf_counter() - started:.1f} s: "
            + ", ".join(f"{k} {v:,}" for k, v in kinds.items())
        )
        sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        report("SQLite", run_child(sqlite_url, prepare(sqlite_url), path))
        Path(tmp, "bench.db").unlink()
        name, pg_url = fresh_postgres()
        try:
            report("PostgreSQL", run_child(pg_url, prepare(pg_url), path))
        finally:
            drop_postgres(name)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
