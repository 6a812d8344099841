"""Every file of the awkward CSV corpus through `broadcast-bot broadcasts upload`, on SQLite and
PostgreSQL: the summary and the error report are pinned, and so is what a failed file leaves."""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.cli.main import cli
from broadcasts import contacts, service
from broadcasts.db import transaction
from broadcasts.enums import ImportStatus
from broadcasts.errors import IllegalTransition, ValidationFailed
from broadcasts.imports import import_csv
from broadcasts.metrics import recount, stored_counts
from broadcasts.models import Broadcast, Contact, Import, Recipient
from broadcasts.templates import TemplateData, upsert_templates
from tests.factories import OPERATOR, make_config

CORPUS = Path(__file__).parent.parent / "data" / "csv"

TWO = TemplateData(
    name="order_ready",
    language="en",
    category="UTILITY",
    status="APPROVED",
    parameter_format="POSITIONAL",
    parameter_names=["1", "2"],
    body_text="Hi {{1}}, your order {{2}} is ready.",
)
NAMED = TemplateData(
    name="order_shipped",
    language="en",
    category="UTILITY",
    status="APPROVED",
    parameter_format="NAMED",
    parameter_names=["first_name", "order_id"],
    body_text="Hi {{first_name}}, order {{order_id}} has shipped.",
)
ONE = "holiday_promotion"  # tests.factories.POSITIONAL: one parameter, {{1}}
SCIENTIFIC = "phone_scientific"


def draft(sessions: sessionmaker[Session], template: str = ONE, name: str = "Sale") -> str:
    with transaction(sessions) as session:
        config = make_config(session) if _no_config(session) else None
        if config is not None:
            upsert_templates(session, config, [TWO, NAMED])
        broadcast = service.create_broadcast(
            session, name=name, config_ref="main", template_ref=template, by=OPERATOR
        )
        return broadcast.id


def _no_config(session: Session) -> bool:
    from broadcasts.configs import get_config_or_none

    return get_config_or_none(session, "main") is None


def invoke(db_url: str, *args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(
        cli,
        list(args),
        env={"DATABASE_URL": db_url, "PHONE_DEFAULT_REGION": None, **(env or {})},
    )


def upload(db_url: str, broadcast_id: str, path: Path, report: Path, *extra: str) -> dict[str, Any]:
    result = invoke(
        db_url,
        "broadcasts",
        "upload",
        broadcast_id,
        str(path),
        "--json",
        "--report",
        str(report),
        *extra,
    )
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def fails(db_url: str, *args: str, env: dict[str, str | None] | None = None) -> str:
    result = invoke(db_url, *args, env=env)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def report_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def counters_match(sessions: sessionmaker[Session], broadcast_id: str) -> int:
    with transaction(sessions) as session:
        broadcast = session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        assert stored_counts(broadcast) == recount(session, broadcast_id)
        return broadcast.total_count


def phones_of(sessions: sessionmaker[Session], broadcast_id: str) -> dict[str, dict[str, Any]]:
    with transaction(sessions) as session:
        rows = session.execute(
            select(Recipient.phone, Recipient.params).where(Recipient.broadcast_id == broadcast_id)
        )
        return {phone: params for phone, params in rows}


BASE = {
    "invalid": 0,
    "duplicates": 0,
    "already_present": 0,
    "opted_out": 0,
    "test_excluded": 0,
    "invalid_by_reason": {},
    "encoding": "utf-8",
    "delimiter": ",",
    "region": None,
}

# file, template, expected summary (over BASE), expected report rows as (line, reason)
ACCEPTED_FILES: list[tuple[str, str, dict[str, Any], list[tuple[str, str]]]] = [
    (
        "bom_utf8.csv",
        ONE,
        {"rows": 3, "accepted": 3, "encoding": "utf-8-sig"},
        [],
    ),
    (
        "semicolon.csv",
        ONE,
        {
            "rows": 3,
            "accepted": 2,
            "invalid": 1,
            "invalid_by_reason": {"phone_no_country_code": 1},
            "delimiter": ";",
        },
        [("4", "phone_no_country_code")],
    ),
    (
        "latin1.csv",
        ONE,
        {"rows": 3, "accepted": 3, "encoding": "cp1252", "delimiter": ";"},
        [],
    ),
    (
        "excel_mangled.csv",
        ONE,
        {
            "rows": 11,
            "accepted": 2,
            "invalid": 9,
            "invalid_by_reason": {
                "phone_bad_country_code": 1,
                "phone_empty": 1,
                "phone_letters": 1,
                "phone_no_country_code": 3,
                SCIENTIFIC: 2,
                "phone_too_long": 1,
            },
        },
        [
            ("2", "phone_no_country_code"),  # Excel stripped the +: never guessed
            ("3", SCIENTIFIC),
            ("4", SCIENTIFIC),
            ("6", "phone_no_country_code"),
            ("8", "phone_no_country_code"),
            ("9", "phone_too_long"),
            ("10", "phone_letters"),
            ("11", "phone_empty"),
            ("12", "phone_bad_country_code"),
        ],
    ),
    ("blank_lines.csv", ONE, {"rows": 2, "accepted": 2}, []),
    (
        "quoted_newlines.csv",
        ONE,
        {
            "rows": 4,
            "accepted": 2,
            "invalid": 2,
            "invalid_by_reason": {"param_invalid": 1, "row_malformed": 1},
        },
        [("2", "param_invalid"), ("5", "row_malformed")],
    ),
    (
        "duplicates.csv",
        ONE,
        {
            "rows": 6,
            "accepted": 2,
            "duplicates": 3,
            "invalid": 1,
            "invalid_by_reason": {"phone_no_country_code": 1},
        },
        [
            ("3", "duplicate"),
            ("4", "phone_no_country_code"),
            ("6", "duplicate"),
            ("7", "duplicate"),
        ],
    ),
    (
        "missing_params.csv",
        TWO.name,
        {
            "rows": 8,
            "accepted": 2,
            "invalid": 6,
            "invalid_by_reason": {"param_invalid": 2, "param_missing": 3, "param_too_long": 1},
        },
        [
            ("3", "param_missing"),
            ("4", "param_missing"),
            ("5", "param_invalid"),
            ("6", "param_invalid"),
            ("7", "param_too_long"),
            ("8", "param_missing"),
        ],
    ),
    ("tabs.tsv", ONE, {"rows": 2, "accepted": 2, "delimiter": "\t"}, []),
    ("pipes.csv", ONE, {"rows": 2, "accepted": 2, "delimiter": "|"}, []),
    ("utf16.txt", ONE, {"rows": 2, "accepted": 2, "encoding": "utf-16", "delimiter": "\t"}, []),
    (
        "injection.csv",
        ONE,
        {
            "rows": 4,
            "accepted": 1,
            "invalid": 3,
            "invalid_by_reason": {"param_missing": 1, "phone_letters": 2},
        },
        [("2", "phone_letters"), ("3", "param_missing"), ("4", "phone_letters")],
    ),
    (
        "named.csv",
        NAMED.name,
        {"rows": 2, "accepted": 1, "invalid": 1, "invalid_by_reason": {"param_missing": 1}},
        [("3", "param_missing")],
    ),
]


@pytest.mark.parametrize(
    ("filename", "template", "expected", "reported"),
    ACCEPTED_FILES,
    ids=[f[0] for f in ACCEPTED_FILES],
)
def test_corpus_file_gives_pinned_summary_and_report(
    db_url: str,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    filename: str,
    template: str,
    expected: dict[str, Any],
    reported: list[tuple[str, str]],
) -> None:
    broadcast_id = draft(sessions, template)
    report = tmp_path / "report.csv"
    summary = upload(db_url, broadcast_id, CORPUS / filename, report)
    pinned = {**BASE, **expected}
    assert {k: summary[k] for k in pinned} == pinned
    assert summary["status"] == "done"
    assert summary["rows"] == (
        summary["accepted"]
        + summary["invalid"]
        + summary["duplicates"]
        + summary["already_present"]
        + summary["opted_out"]
        + summary["test_excluded"]
    )
    assert counters_match(sessions, broadcast_id) == summary["accepted"]
    if reported:
        rows = report_rows(report)
        assert rows[0][:3] == ["line", "reason", "detail"]
        assert [(r[0], r[1]) for r in rows[1:]] == reported
        assert summary["report_path"] == str(report)
    else:
        assert not report.exists()
        assert summary["report_path"] is None


@pytest.mark.parametrize(
    ("filename", "template", "message"),
    [
        ("empty.csv", ONE, "Error: The file is empty."),
        ("header_only.csv", ONE, "Error: The file has a header but no rows."),
        ("image.csv", ONE, "Error: This is not a CSV file: it looks like a PNG image."),
        (
            "no_phone_column.csv",
            ONE,
            "Error: The file has no phone_number column (columns found: name, param1); name the "
            "column phone_number (or one of: phone, phonenumber, mobile, mobile_number, msisdn, "
            "whatsapp, whatsapp_number, wa_id, telephone, tel).",
        ),
        (
            "missing_param_column.csv",
            TWO.name,
            "Error: The file has no column for template parameter {{2}} "
            "(expected a column named param2).",
        ),
    ],
)
def test_unusable_file_is_refused_with_one_line_and_leaves_nothing(
    db_url: str, sessions: sessionmaker[Session], filename: str, template: str, message: str
) -> None:
    broadcast_id = draft(sessions, template)
    assert fails(db_url, "broadcasts", "upload", broadcast_id, str(CORPUS / filename)) == message
    with transaction(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Recipient)) == 0
        assert session.scalar(select(func.count()).select_from(Contact)) == 0
        failed = session.scalars(select(Import)).one()
        assert failed.status == ImportStatus.FAILED
        assert failed.error == message.removeprefix("Error: ")
    counters_match(sessions, broadcast_id)


def test_values_are_stored_normalised_and_keyed_by_parameter(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    positional = draft(sessions, TWO.name, name="positional")
    named = draft(sessions, NAMED.name, name="named")
    upload(db_url, positional, CORPUS / "missing_params.csv", tmp_path / "a.csv")
    upload(db_url, named, CORPUS / "named.csv", tmp_path / "b.csv")
    assert phones_of(sessions, positional) == {
        "+447400123901": {"1": "Ana", "2": "A-1"},
        "+447400123908": {"1": "Ana", "2": "A-8"},
    }
    assert phones_of(sessions, named) == {
        "+447400124501": {"first_name": "Ana", "order_id": "A-100"},
    }
    with transaction(sessions) as session:
        contact = session.scalars(select(Contact).where(Contact.phone == "+447400124501")).one()
        assert contact.attributes == {"segment": "vip"}  # extra columns: contact attributes


def test_latin1_names_are_decoded(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    broadcast_id = draft(sessions)
    upload(db_url, broadcast_id, CORPUS / "latin1.csv", tmp_path / "r.csv")
    names = {p["1"] for p in phones_of(sessions, broadcast_id).values()}
    assert names == {"Jürgen Müßig", "Straße", "Begoña"}


def test_region_option_reads_national_numbers_and_is_shown(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    broadcast_id = draft(sessions)
    summary = upload(
        db_url, broadcast_id, CORPUS / "semicolon.csv", tmp_path / "r.csv", "--region", "fr"
    )
    assert (summary["region"], summary["accepted"], summary["invalid"]) == ("FR", 3, 0)
    assert "+33612345603" in phones_of(sessions, broadcast_id)


def test_numbers_without_country_code_are_refused_unless_assumed_international(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    csv_file = tmp_path / "us.csv"
    # A US list exported without +1: read as Norway (+47) and Denmark (+45) before.
    csv_file.write_text("phone_number,param1\n4755551234,A\n4582123456,B\n4155550113,C\n")
    broadcast_id = draft(sessions)
    refused = upload(db_url, broadcast_id, csv_file, tmp_path / "r.csv")
    assert (refused["accepted"], refused["invalid_by_reason"]) == (
        0,
        {"phone_no_country_code": 3},
    )
    assert refused["assume_international"] is False
    national = upload(db_url, broadcast_id, csv_file, tmp_path / "r.csv", "--region", "US")
    assert (national["accepted"], national["accepted_by_country"]) == (3, {"+1": 3})
    assert set(phones_of(sessions, broadcast_id)) == {
        "+14755551234",
        "+14582123456",
        "+14155550113",
    }
    other = draft(sessions, name="Other")
    assumed = upload(
        db_url, other, CORPUS / "excel_mangled.csv", tmp_path / "r.csv", "--assume-international"
    )
    assert assumed["assume_international"] is True
    assert "+447400123501" in phones_of(sessions, other)
    assert assumed["accepted_by_country"] == {"+44": 3}


def test_excel_sep_line_is_understood(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    csv_file = tmp_path / "excel.csv"
    csv_file.write_bytes(b"sep=;\r\nphone_number;param1\r\n+447400123456;Ana, B\r\n")
    broadcast_id = draft(sessions)
    summary = upload(db_url, broadcast_id, csv_file, tmp_path / "r.csv")
    assert (summary["accepted"], summary["delimiter"]) == (1, ";")
    assert phones_of(sessions, broadcast_id) == {"+447400123456": {"1": "Ana, B"}}


def test_region_setting_is_the_default(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    broadcast_id = draft(sessions)
    result = invoke(
        db_url,
        "broadcasts",
        "upload",
        broadcast_id,
        str(CORPUS / "excel_mangled.csv"),
        "--json",
        "--report",
        str(tmp_path / "r.csv"),
        env={"PHONE_DEFAULT_REGION": "GB"},
    )
    summary = json.loads(result.stdout)
    assert summary["region"] == "GB"
    assert "phone_no_country_code" not in summary["invalid_by_reason"]
    assert "+447400123504" in phones_of(sessions, broadcast_id)


def test_report_neutralises_formulas_but_keeps_e164_numbers(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    broadcast_id = draft(sessions)
    report = tmp_path / "r.csv"
    upload(db_url, broadcast_id, CORPUS / "injection.csv", report)
    rows = report_rows(report)
    assert rows[1][3] == '\'=HYPERLINK("http://evil.example","click")'
    assert rows[2][3] == "+447400124401"  # an E.164 number stays as it is
    assert rows[2][5] == "'=1+2"
    assert rows[3][3:] == ["'@SUM(A1)", "Ana", "'-3"]
    for row in rows[1:]:
        assert not any(cell.startswith(("=", "@", "-")) for cell in row)


def test_readable_summary_and_default_report_next_to_the_file(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    broadcast_id = draft(sessions)
    source = tmp_path / "customers.csv"
    shutil.copy(CORPUS / "excel_mangled.csv", source)
    result = invoke(db_url, "broadcasts", "upload", broadcast_id, str(source))
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ("Rows read", "Accepted", "phone_scientific", "Encoding", "UTF-8", "comma"):
        assert text in out
    assert "none (numbers need a country code)" in out
    assert (tmp_path / "customers.errors.csv").exists()
    assert f"Error report (9 rows): {tmp_path / 'customers.errors.csv'}" in out


def test_same_file_twice_then_a_second_file_adds_only_new_numbers(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    broadcast_id = draft(sessions)
    first = upload(db_url, broadcast_id, CORPUS / "duplicates.csv", tmp_path / "1.csv")
    again = upload(db_url, broadcast_id, CORPUS / "duplicates.csv", tmp_path / "2.csv")
    assert (first["accepted"], first["duplicates"]) == (2, 3)
    assert (again["accepted"], again["duplicates"], again["already_present"]) == (0, 0, 5)
    other = tmp_path / "other.csv"
    other.write_text("phone_number,param1\n+447400123801,Old\n+447400129999,New\n")
    third = upload(db_url, broadcast_id, other, tmp_path / "3.csv")
    assert (third["accepted"], third["already_present"]) == (1, 1)
    assert counters_match(sessions, broadcast_id) == 3
    assert phones_of(sessions, broadcast_id)["+447400123801"] == {"1": "First"}


def test_opted_out_and_test_contacts_are_excluded_and_counted(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    broadcast_id = draft(sessions)
    with transaction(sessions) as session:
        contacts.set_opt_out(session, "+447400123401", True, "STOP")
        contacts.mark_test(session, "+44 7400 123402")
    report = tmp_path / "r.csv"
    summary = upload(db_url, broadcast_id, CORPUS / "bom_utf8.csv", report)
    assert (summary["accepted"], summary["opted_out"], summary["test_excluded"]) == (1, 1, 1)
    assert [(r[0], r[1]) for r in report_rows(report)[1:]] == [
        ("2", "opted_out"),
        ("3", "test_contact"),
    ]
    assert set(phones_of(sessions, broadcast_id)) == {"+14155552671"}
    # Rows with extra columns update their contact; the flags still exclude them.
    with transaction(sessions) as session:
        contacts.set_opt_out(session, "+33612345601", True, "STOP")
        contacts.mark_test(session, "+33612345602")
    other = draft(sessions, name="Other")
    summary = upload(db_url, other, CORPUS / "semicolon.csv", report, "--region", "FR")
    assert (summary["accepted"], summary["opted_out"], summary["test_excluded"]) == (1, 1, 1)
    with transaction(sessions) as session:
        flagged = session.scalars(select(Contact).where(Contact.phone == "+33612345602")).one()
        assert flagged.is_test and flagged.attributes == {}
        paris = session.scalars(select(Contact).where(Contact.phone == "+33612345603")).one()
        assert paris.attributes == {"ville": "Paris"}


def test_only_a_draft_or_scheduled_broadcast_takes_a_file(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    broadcast_id = draft(sessions)
    upload(db_url, broadcast_id, CORPUS / "bom_utf8.csv", tmp_path / "r.csv")
    with transaction(sessions) as session:
        service.start_broadcast(session, broadcast_id, by=OPERATOR)
    line = fails(db_url, "broadcasts", "upload", broadcast_id, str(CORPUS / "pipes.csv"))
    assert line == "Error: Broadcast 'Sale' is sending; it can no longer be edited."
    assert counters_match(sessions, broadcast_id) == 3


def test_file_over_the_size_limit_is_refused(db_url: str, sessions: sessionmaker[Session]) -> None:
    broadcast_id = draft(sessions)
    line = fails(
        db_url,
        "broadcasts",
        "upload",
        broadcast_id,
        str(CORPUS / "missing_params.csv"),
        env={"CSV_MAX_BYTES": "1000"},
    )
    assert (
        line == "Error: The file is larger than the 1,000 bytes limit; split it into smaller files."
    )


def big_file(path: Path, rows: int, *, nul_at: int | None = None) -> None:
    """`rows` data rows: unique valid numbers, every 97th row a duplicate of an earlier one,
    every 89th row scientific notation."""
    rng = random.Random(5)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone_number,param1\n")
        for i in range(rows):
            if nul_at is not None and i == nul_at:
                out.write("+447400000000,bro\x00ken\n")
            elif i and i % 97 == 0:
                out.write(f"+4474{rng.randrange(0, i):08d},Again\n")
            elif i % 89 == 0:
                out.write("4.474E+11,Sci\n")
            else:
                out.write(f"+4474{i:08d},Name {i}\n")


def test_ten_thousand_rows_across_batches(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "big.csv"
    big_file(path, 12_000)
    broadcast_id = draft(sessions)
    summary = upload(db_url, broadcast_id, path, tmp_path / "r.csv")
    scientific = len([i for i in range(12_000) if i % 89 == 0 and not (i and i % 97 == 0)])
    duplicates = len([i for i in range(12_000) if i and i % 97 == 0])
    assert summary["rows"] == 12_000
    assert summary["invalid_by_reason"] == {SCIENTIFIC: scientific}
    # A duplicate of a row that was itself scientific or a duplicate is simply a new number.
    assert summary["accepted"] + summary["duplicates"] == 12_000 - scientific
    assert summary["duplicates"] <= duplicates
    assert counters_match(sessions, broadcast_id) == summary["accepted"]
    reasons = {r[1] for r in report_rows(tmp_path / "r.csv")[1:]}
    assert reasons == {SCIENTIFIC, "duplicate"}


def test_nul_byte_deep_in_the_file_refuses_it_before_writing(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    path = tmp_path / "nul.csv"
    big_file(path, 20_000, nul_at=15_000)  # beyond the first 256 KB, which are sniffed
    broadcast_id = draft(sessions)
    line = fails(db_url, "broadcasts", "upload", broadcast_id, str(path))
    assert line == "Error: Line 15002 contains binary (NUL) bytes; this is not a text CSV file."
    assert counters_match(sessions, broadcast_id) == 0
    with transaction(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 0


class ChangingFile(io.BytesIO):
    """A file someone overwrites while it is imported: the writing pass reads other bytes."""

    def __init__(self, first: bytes, later: bytes) -> None:
        super().__init__(first)
        self.later = later
        self.rewinds = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset, whence) == (0, 0):
            self.rewinds += 1
            if self.rewinds == 4:  # size check, sniff, checking pass, then the writing pass
                super().seek(0)
                self.truncate()
                self.write(self.later)
        return super().seek(offset, whence)


def test_failure_while_writing_takes_back_what_the_import_added(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    good = tmp_path / "good.csv"
    big_file(good, 3_000)
    broken = tmp_path / "broken.csv"
    big_file(broken, 3_000, nul_at=2_500)
    broadcast_id = draft(sessions)
    source: BinaryIO = ChangingFile(good.read_bytes(), broken.read_bytes())
    with pytest.raises(ValidationFailed, match="Line 2502 contains binary"):
        import_csv(
            sessions,
            broadcast_id,
            source,
            filename="x.csv",
            region=None,
            by=OPERATOR,
            batch_size=500,
        )
    assert counters_match(sessions, broadcast_id) == 0
    with transaction(sessions) as session:
        failed = session.scalars(select(Import)).one()
        assert failed.status == ImportStatus.FAILED
        assert session.scalar(select(func.count()).select_from(Recipient)) == 0


def test_same_slack_file_is_imported_once(sessions: sessionmaker[Session]) -> None:
    broadcast_id = draft(sessions)
    data = (CORPUS / "duplicates.csv").read_bytes()
    first = import_csv(
        sessions,
        broadcast_id,
        io.BytesIO(data),
        filename="d.csv",
        region=None,
        by=OPERATOR,
        source_file_id="F123",
    )
    again = import_csv(
        sessions,
        broadcast_id,
        io.BytesIO(b"not even read"),
        filename="d.csv",
        region=None,
        by=OPERATOR,
        source_file_id="F123",
    )
    assert again == first
    assert again.error_report_csv is not None and "duplicate" in again.error_report_csv
    assert counters_match(sessions, broadcast_id) == 2
    # A Slack file that failed is tried afresh, and fails again for the same reason.
    for _ in range(2):
        with pytest.raises(ValidationFailed, match="The file is empty"):
            import_csv(
                sessions,
                broadcast_id,
                io.BytesIO(b""),
                filename="e.csv",
                region=None,
                by=OPERATOR,
                source_file_id="F456",
            )


def test_unknown_region_and_non_draft_are_clear_errors(sessions: sessionmaker[Session]) -> None:
    broadcast_id = draft(sessions)
    with pytest.raises(ValidationFailed, match="'XX' is not a region"):
        import_csv(
            sessions,
            broadcast_id,
            io.BytesIO(b"phone\n+1\n"),
            filename="x",
            region="xx",
            by=OPERATOR,
        )
    with transaction(sessions) as session:
        service.cancel_broadcast(session, broadcast_id, by=OPERATOR)
    with pytest.raises(IllegalTransition, match="read-only"):
        import_csv(
            sessions,
            broadcast_id,
            io.BytesIO(b"phone\n+1\n"),
            filename="x",
            region=None,
            by=OPERATOR,
        )


def test_template_csv_is_the_header_uploads_expect(
    db_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    positional = draft(sessions, TWO.name, name="positional")
    named = draft(sessions, NAMED.name, name="named")
    result = invoke(db_url, "broadcasts", "template-csv", positional)
    assert result.stdout == "phone_number,param1,param2\n"
    out = tmp_path / "named.csv"
    result = invoke(db_url, "broadcasts", "template-csv", named, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text() == "phone_number,first_name,order_id\n"
    with out.open("a") as f:
        f.write("+447400125001,Ana,A-1\n")
    summary = upload(db_url, named, out, tmp_path / "r.csv")
    assert summary["accepted"] == 1
