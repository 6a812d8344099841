"""Bulk load of checked CSV rows, chunk by chunk through staging tables, in one transaction.

Each chunk of checked rows goes into a temporary table (PostgreSQL `COPY`, SQLite a JSON
array); set-based statements then decide all of its rows at once: which row is a number's first
in the file, which numbers are opted-out or test contacts, which were recipients already, which
are inserted, and what every other row is (SQLite: a handful of statements around a table of
every number's first row; PostgreSQL: one statement, whose INSERT … ON CONFLICT DO NOTHING tells
the numbers earlier chunks inserted). The database does a chunk while the next ones are checked,
and everything stays inside the caller's transaction, so an import that fails at any point
leaves nothing behind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from broadcasts.enums import RecipientStatus
from broadcasts.errors import ValidationFailed

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class Staged:
    """Checked rows encoded for one `stage` call: a COPY text block for PostgreSQL, a JSON
    array for SQLite. Built where rows are checked (a worker process), so the writer handles
    one string per chunk instead of a tuple per row."""

    __slots__ = ("parts", "phones", "postgres", "rows", "with_attributes")

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres
        self.parts: list[str] = []
        self.rows = 0
        self.with_attributes = False
        self.phones: set[str] = set()  # PostgreSQL: the chunk's numbers so far

    def add(
        self, line: int, phone: str, params: dict[str, str], name: str | None, attrs: dict[str, str]
    ) -> None:
        self.rows += 1
        if attrs:
            self.with_attributes = True
        params_text = json_object(params)
        if self.postgres:
            # JSON text has no raw tab or line break (json escapes them), so only its backslashes
            # need COPY's escaping, and most rows have none.
            if "\\" in params_text:
                params_text = params_text.translate(_COPY_ESCAPES)
            name_text = "\\N" if name is None else name.translate(_COPY_ESCAPES)
            attrs_text = json_object(attrs).translate(_COPY_ESCAPES) if attrs else "\\N"
            # Whether an earlier row of this chunk has the number (the load then need not
            # look for the number's first row within the chunk).
            phones = self.phones
            if phone in phones:
                repeat = "t"
            else:
                repeat = "f"
                phones.add(phone)
            self.parts.append(
                f"{line}\t{phone}\t{params_text}\t{name_text}\t{attrs_text}\t{repeat}\n"
            )
        else:
            name_json = "null" if name is None else encode_basestring(name)
            attrs_json = json_object(attrs) if attrs else "null"
            self.parts.append(f'[{line},"{phone}",{params_text},{name_json},{attrs_json}]')

    def payload(self) -> str:
        if self.postgres:
            return "".join(self.parts)
        return "[" + ",".join(self.parts) + "]"


def json_object(values: dict[str, str]) -> str:
    """`values` as compact JSON, exactly as json.dumps(ensure_ascii=False, separators=(",",
    ":")) writes it, at a third of its cost (the string escaping is json's own C function)."""
    return (
        "{"
        + ",".join([f"{encode_basestring(k)}:{encode_basestring(v)}" for k, v in values.items()])
        + "}"
    )


# Outcomes of rows that were checked and staged but are not accepted.
DUPLICATE = "duplicate"
OPTED_OUT = "opted_out"
TEST_CONTACT = "test_contact"
ALREADY_PRESENT = "already_present"
# SQLite's page cache during a load (KiB): the recipient indexes of a million-row import stay
# in memory instead of being re-read page by page.
SQLITE_LOAD_CACHE_KIB = 32 * 1024

_TEMP_TABLES = ("import_chunk", "import_first", "import_outcome")
_PG_TABLES = (
    "CREATE TEMP TABLE import_chunk (line integer NOT NULL, phone text NOT NULL,"
    " params json NOT NULL, name text, attrs text, repeat boolean NOT NULL) ON COMMIT DROP",
    # The file's numbers that were not inserted, with the reason of their first row: later rows
    # of such a number get the same outcome.
    "CREATE TEMP TABLE import_excluded (phone text PRIMARY KEY, reason text NOT NULL)"
    " ON COMMIT DROP",
    "CREATE TEMP TABLE import_outcome (line integer NOT NULL, phone text NOT NULL,"
    " outcome text NOT NULL) ON COMMIT DROP",
)
# Whether this import inserted the number {0} already: a scalar subquery probes the unique index
# (an EXISTS would be planned as a hash of all the broadcast's recipients, for every chunk).
_OURS = (
    "COALESCE((SELECT r.import_id FROM recipients r WHERE r.broadcast_id = :b"
    " AND r.phone = {0}) = :i, false)"
)
# A contact's reason to leave its number out, as CASE branches over contacts `ct`.
_CONTACT_REASON = (
    f"WHEN ct.opted_out_at IS NOT NULL THEN '{OPTED_OUT}' WHEN ct.is_test THEN '{TEST_CONTACT}'"
)
_PG_COPY = "COPY import_chunk (line, phone, params, name, attrs, repeat) FROM STDIN"
_SQLITE_TABLES = (
    "CREATE TEMP TABLE import_chunk (line INTEGER PRIMARY KEY, phone TEXT NOT NULL,"
    " params TEXT NOT NULL, name TEXT, attrs TEXT)",
    "CREATE TEMP TABLE import_first (phone TEXT PRIMARY KEY, line INTEGER NOT NULL,"
    " contact_id INTEGER, reason TEXT) WITHOUT ROWID",
    "CREATE TEMP TABLE import_outcome (line INTEGER PRIMARY KEY, phone TEXT NOT NULL,"
    " outcome TEXT NOT NULL)",
)
_NAMED = re.compile(r"(?<!:):([a-z]+)\b")


class ImportConflict(ValidationFailed):
    """The broadcast gained some of the file's numbers from elsewhere during the import."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="file")


def _sqlite_time(moment: datetime) -> str:
    # The format SQLAlchemy's SQLite DateTime writes (naive UTC), so ORM reads it back alike.
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass(frozen=True)
class Outcome:
    """What the load decided: counts by outcome and the first rows to report, by line."""

    accepted: int
    counts: dict[str, int]  # DUPLICATE, OPTED_OUT, TEST_CONTACT, ALREADY_PRESENT → rows
    reported: list[tuple[int, str, str]]  # (line, phone, outcome), ALREADY_PRESENT left out
    # Accepted rows by the first three digits of their number ("+447": 120): enough to tell the
    # calling code (phones.by_country), without a Python object per accepted row.
    accepted_by_prefix: dict[str, int]


class Load:
    """One import's staging tables inside the caller's transaction; chunks come in file order."""

    def __init__(
        self, session: Session, broadcast_id: str, import_id: int, *, now: datetime
    ) -> None:
        self.conn: Connection = session.connection()
        self.postgres = self.conn.dialect.name == "postgresql"
        self.accepted = 0
        self._cache_kib: int | None = None
        # PostgreSQL: accepted rows by prefix, summed from each chunk's statement.
        self._prefixes: dict[str, int] = {}
        # SQLite: every statement of a chunk starts from the chunk's rows and probes the indexes
        # of the growing tables; the join order is fixed (CROSS JOIN) as SQLite would rather
        # scan those without statistics.
        self.chunk_rows = "import_chunk c CROSS JOIN import_first f ON f.phone = c.phone"
        self.firsts = f"{self.chunk_rows} AND f.line = c.line"  # each number's first row
        if self.postgres:
            self.args: dict[str, Any] = {"b": broadcast_id, "i": import_id, "now": now}
            for ddl in _PG_TABLES:
                self.conn.exec_driver_sql(ddl)
            # The staging tables have no statistics: the planner must not hash or sort the
            # growing tables for every chunk; the chunk's rows probing their indexes is the plan.
            self.conn.exec_driver_sql("SET LOCAL enable_hashjoin = off")
            self.conn.exec_driver_sql("SET LOCAL enable_mergejoin = off")
            # Wide rows (long parameters, extra columns) put a chunk's statements over
            # jit_above_cost, and compiling them costs more than it saves (5,000 rows of
            # 400-character parameters: 330–440 ms a chunk with JIT, 230–290 ms without).
            self.conn.exec_driver_sql("SET LOCAL jit = off")
        else:
            stamp = _sqlite_time(now)
            self.args = {"b": broadcast_id, "i": import_id, "now": stamp}
            self._drop_sqlite_tables()
            self._cache_kib = int(self.conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
            self.conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_LOAD_CACHE_KIB}")
            for ddl in _SQLITE_TABLES:
                self.conn.exec_driver_sql(ddl)
        # Whether the broadcast has recipients from before; if not, none can be "already present".
        self.had_recipients = (
            self._run("SELECT 1 FROM recipients WHERE broadcast_id = :b LIMIT 1").first()
            is not None
        )

    def _run(self, sql: str, **names: Any) -> Any:
        """Run `sql` written with :name parameters (sqlite3's style; psycopg's is %(name)s)."""
        if self.postgres:
            sql = _NAMED.sub(r"%(\1)s", sql)
        return self.conn.exec_driver_sql(sql, {**self.args, **names})

    def stage(self, rows: int, payload: str, *, with_attributes: bool) -> None:
        """Decide one chunk of checked rows (in file order, encoded by `Staged`) and insert its
        accepted ones."""
        if not rows:
            return
        if self.postgres:
            self._stage_postgres(payload, with_attributes)
            return
        run = self._run
        self.conn.exec_driver_sql("DELETE FROM import_chunk")
        run(
            "INSERT INTO import_chunk (line, phone, params, name, attrs)"
            " SELECT value ->> 0, value ->> 1, value -> 2, value ->> 3,"
            " NULLIF(value -> 4, 'null') FROM json_each(:doc)",
            doc=payload,
        )
        # In line order, so the row that gets in is each number's first.
        run(
            "INSERT OR IGNORE INTO import_first (phone, line)"
            " SELECT phone, line FROM import_chunk ORDER BY line"
        )
        if with_attributes:
            self._upsert_contacts()
        contact = "FROM contacts ct WHERE ct.phone = import_first.phone"
        run(
            f"UPDATE import_first SET contact_id = (SELECT ct.id {contact}),"
            f" reason = (SELECT CASE {_CONTACT_REASON} END {contact})"
            " WHERE phone IN ("
            f"SELECT c.phone FROM {self.firsts} JOIN contacts ct ON ct.phone = c.phone)"
        )
        if self.had_recipients:
            run(
                f"UPDATE import_first SET reason = '{ALREADY_PRESENT}' WHERE reason IS NULL"
                " AND phone IN ("
                f"SELECT c.phone FROM {self.firsts} JOIN recipients r"
                " ON r.broadcast_id = :b AND r.phone = c.phone)"
            )
        try:
            inserted = run(
                "INSERT INTO recipients (broadcast_id, phone, params, contact_id, import_id,"
                " status, attempts, created_at)"
                f" SELECT :b, c.phone, c.params, f.contact_id, :i, '{_PENDING}', 0, :now"
                f" FROM {self.firsts} WHERE f.reason IS NULL ORDER BY c.line"
            ).rowcount
        except IntegrityError:
            raise _conflict() from None
        self.accepted += int(inserted)
        run(
            "INSERT INTO import_outcome (line, phone, outcome)"
            " SELECT c.line, c.phone, CASE WHEN c.line = f.line THEN f.reason"
            f" ELSE COALESCE(f.reason, '{DUPLICATE}') END"
            f" FROM {self.chunk_rows} WHERE c.line <> f.line OR f.reason IS NOT NULL"
        )

    def _stage_postgres(self, payload: str, with_attributes: bool) -> None:
        """One statement decides and writes the whole chunk.

        A row's outcome is the pinned reason of its number (import_excluded: an earlier chunk
        left the number out), else none if this import inserted the number already (the row is
        a duplicate), else the contact's (opted-out, test), else ALREADY_PRESENT if the
        broadcast has the number. A row with no reason is inserted if it is its number's first
        in the chunk (`repeat` is false); ON CONFLICT DO NOTHING then skips the numbers an
        earlier chunk inserted, whose rows are duplicates. A skipped number that this import did
        not insert was added to the broadcast by someone else during the import: ImportConflict,
        as a plain INSERT's unique violation would have been.
        """
        self.conn.exec_driver_sql("TRUNCATE import_chunk")
        cursor: Any = self.conn.connection.cursor()
        with cursor, cursor.copy(_PG_COPY) as copy:
            copy.write(payload)
        if with_attributes:
            self._upsert_contacts()
        if self.had_recipients:
            # One look-up of the number in the broadcast (a scalar subquery: the unique index is
            # probed whatever the statistics say) tells "ours" (the import id) from "already
            # present" (another one, or -1 for none) and from absent (0).
            reason = (
                "CASE COALESCE((SELECT COALESCE(r.import_id, -1) FROM recipients r"
                " WHERE r.broadcast_id = :b AND r.phone = c.phone), 0)"
                f" WHEN :i THEN NULL WHEN 0 THEN CASE {_CONTACT_REASON} END"
                f" ELSE CASE {_CONTACT_REASON} ELSE '{ALREADY_PRESENT}' END END"
            )
        else:
            # Only a flagged contact needs the look-up (rare): was the number ours already?
            reason = (
                "CASE WHEN ct.id IS NULL OR (ct.opted_out_at IS NULL AND NOT ct.is_test)"
                f" THEN NULL WHEN {_OURS.format('c.phone')} THEN NULL {_CONTACT_REASON} END"
            )
        result = self._run(
            "WITH c AS MATERIALIZED ("
            " SELECT c.line, c.phone, c.params, c.repeat, ct.id AS contact_id,"
            f" x.phone IS NOT NULL AS seen, COALESCE(x.reason, {reason}) AS reason"
            " FROM import_chunk c LEFT JOIN import_excluded x ON x.phone = c.phone"
            " LEFT JOIN contacts ct ON ct.phone = c.phone),"
            " ins AS (INSERT INTO recipients (broadcast_id, phone, params, contact_id,"
            " import_id, status, attempts, created_at)"
            f" SELECT :b, phone, params, contact_id, :i, '{_PENDING}', 0, :now FROM c"
            " WHERE reason IS NULL AND NOT repeat ORDER BY line"
            " ON CONFLICT (broadcast_id, phone) DO NOTHING RETURNING phone),"
            " skipped AS MATERIALIZED (SELECT line, phone, "
            + _OURS.format("c.phone")
            + " AS ours FROM c WHERE reason IS NULL AND NOT repeat"
            " AND phone NOT IN (SELECT phone FROM ins)),"
            " excluded AS (INSERT INTO import_excluded (phone, reason)"
            " SELECT phone, reason FROM c WHERE reason IS NOT NULL AND NOT repeat AND NOT seen),"
            " outcome AS (INSERT INTO import_outcome (line, phone, outcome)"
            f" SELECT line, phone, COALESCE(reason, '{DUPLICATE}') FROM c"
            " WHERE reason IS NOT NULL OR repeat"
            f" UNION ALL SELECT line, phone, '{DUPLICATE}' FROM skipped WHERE ours)"
            " SELECT substr(phone, 1, 4), count(*) FROM ins GROUP BY 1"
            " UNION ALL SELECT NULL, count(*) FROM skipped WHERE NOT ours"
        ).all()
        for prefix, count in result:
            if prefix is None:
                if count:
                    raise _conflict()
            else:
                self.accepted += int(count)
                self._prefixes[prefix] = self._prefixes.get(prefix, 0) + int(count)

    def _upsert_contacts(self) -> None:
        """Rows with extra columns create or update their contact (new values win, name kept):
        the first row of each number in the file."""
        if self.postgres:
            merge = "(contacts.attributes::jsonb || excluded.attributes::jsonb)::json"
            attributes = "c.attrs::json"
            rows = (
                "import_chunk c WHERE c.attrs IS NOT NULL AND NOT c.repeat"
                " AND NOT EXISTS (SELECT FROM import_excluded x WHERE x.phone = c.phone)"
                " AND NOT " + _OURS.format("c.phone")
            )
        else:
            merge = "json_patch(contacts.attributes, excluded.attributes)"
            attributes = "json(c.attrs)"
            rows = f"{self.firsts} WHERE c.attrs IS NOT NULL"
        self._run(
            "INSERT INTO contacts"
            " (phone, name, attributes, is_test, source, created_at, updated_at)"
            f" SELECT c.phone, c.name, {attributes}, false, 'import', :now, :now FROM {rows}"
            " ON CONFLICT (phone) DO UPDATE SET"
            f" attributes = {merge},"
            " name = COALESCE(contacts.name, excluded.name),"
            " updated_at = excluded.updated_at"
        )

    def finish(self, report_limit: int) -> Outcome:
        """Counts by outcome and the rows to report; drops the staging tables."""
        try:
            counts = {
                outcome: int(n)
                for outcome, n in self.conn.exec_driver_sql(
                    "SELECT outcome, count(*) FROM import_outcome GROUP BY outcome"
                )
            }
            reported = [
                (int(line), str(phone), str(outcome))
                for line, phone, outcome in self._run(
                    "SELECT line, phone, outcome FROM import_outcome"
                    f" WHERE outcome <> '{ALREADY_PRESENT}' ORDER BY line LIMIT :limit",
                    limit=report_limit,
                )
            ]
            # SQLite: a number's first row with no reason is the row that was inserted.
            accepted_by_prefix = (
                self._prefixes
                if self.postgres
                else {
                    str(prefix): int(n)
                    for prefix, n in self.conn.exec_driver_sql(
                        "SELECT substr(phone, 1, 4), count(*) FROM import_first"
                        " WHERE reason IS NULL GROUP BY substr(phone, 1, 4)"
                    )
                }
            )
        finally:
            if not self.postgres:
                self._drop_sqlite_tables()
                self.conn.exec_driver_sql(f"PRAGMA cache_size = {self._cache_kib}")
        return Outcome(self.accepted, counts, reported, accepted_by_prefix)

    def _drop_sqlite_tables(self) -> None:
        for table in _TEMP_TABLES:
            self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{table}")


_PENDING = RecipientStatus.PENDING.value


def _conflict() -> ImportConflict:
    # Someone added some of these numbers meanwhile (contacts picked in Slack): the caller's
    # transaction rolls back and the file can simply be imported again.
    return ImportConflict(
        "Some of these numbers were added to the broadcast while the file was being "
        "imported; nothing of the file was kept. Import it again."
    )


def delete_import_recipients(session: Session, broadcast_id: str, import_id: int) -> int:
    """Remove what one import added (it is undone after a failure); returns how many."""
    conn = session.connection()
    marker = "%s" if conn.dialect.name == "postgresql" else "?"
    result = conn.exec_driver_sql(
        f"DELETE FROM recipients WHERE broadcast_id = {marker} AND import_id = {marker}"
        " RETURNING id",
        (broadcast_id, import_id),
    )
    return len(result.all())
