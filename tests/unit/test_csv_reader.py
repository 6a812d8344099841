"""Reading uploads: encodings, binaries, delimiters, header matching and safe report cells."""

from __future__ import annotations

import codecs
import io
import re

import pytest

from broadcasts.csv_template import column_key, csv_header, match_columns
from broadcasts.errors import ValidationFailed
from broadcasts.imports.reader import FileError, detect_delimiter, detect_encoding, records, sniff
from broadcasts.imports.report import ErrorReport, safe_cell
from broadcasts.models import Template

POSITIONAL = Template(parameter_format="POSITIONAL", parameter_names=["1", "2"], body_text="")
NAMED = Template(parameter_format="NAMED", parameter_names=["first_name", "order_id"])


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (b"phone\n+447400123456\n", "utf-8"),
        ("phone,name\n+44,Zoë\n".encode(), "utf-8"),
        (codecs.BOM_UTF8 + b"phone\n", "utf-8-sig"),
        (codecs.BOM_UTF16_LE + "phone\n".encode("utf-16-le"), "utf-16"),
        ("phone;name\n+33;Hélène\n".encode("cp1252"), "cp1252"),
        ("phone;name\n+33;€ off\n".encode("cp1252"), "cp1252"),
    ],
)
def test_encoding_is_detected(data: bytes, encoding: str) -> None:
    assert detect_encoding(data, complete=True) == encoding


def test_a_utf8_character_cut_by_the_sample_is_still_utf8() -> None:
    data = "phone,name\n+44,Zoë".encode()[:-1]
    assert detect_encoding(data, complete=False) == "utf-8"


def test_cyrillic_single_byte_text_is_not_read_as_western() -> None:
    data = "phone,name\n+79123456789,Иван Петров Сидорович\n".encode("cp1251") * 20
    assert detect_encoding(data, complete=True) != "cp1252"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "This is not a CSV file: it looks like a PNG image."),
        (b"PK\x03\x04rest", "it looks like a ZIP archive (an .xlsx workbook?)"),
        (b"%PDF-1.7", "it looks like a PDF document"),
        (b"phone\n\x00\x01\x02", "it contains binary (NUL) bytes"),
    ],
)
def test_empty_and_binary_files_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(FileError, match=re.escape(message)):
        detect_encoding(data, complete=True)


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("phone_number,param1\n+44,a\n", ","),
        ("phone_number;param1\n+44;a\n", ";"),
        ("phone_number\tparam1\n+44\ta\n", "\t"),
        ("phone_number|param1\n+44|a\n", "|"),
        ("phone_number\n+44\n", ","),
        ('"name, first";phone\n"a, b";+44\n', ";"),
        ("\n\nphone;param1\n", ";"),
    ],
)
def test_delimiter_is_detected_from_the_header(text: str, delimiter: str) -> None:
    assert detect_delimiter(text) == delimiter


def test_records_carry_the_line_their_record_starts_on() -> None:
    source = io.BytesIO(b'phone,param1\n+44,"two\nlines"\n\n+45,x\n')
    fmt = sniff(source)
    assert list(records(source, fmt)) == [
        (1, ["phone", "param1"]),
        (2, ["+44", "two\nlines"]),
        (4, []),
        (5, ["+45", "x"]),
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"sep=;\r\nphone_number;param1\r\n+447400123456;Ana, B\r\n",
        codecs.BOM_UTF8 + b"SEP=;\nphone_number;param1\n+447400123456;Ana, B\n",
        b'"sep=;"\nphone_number;param1\n+447400123456;Ana, B\n',
    ],
)
def test_excel_sep_line_names_the_delimiter_and_is_not_the_header(data: bytes) -> None:
    source = io.BytesIO(data)
    fmt = sniff(source)
    assert (fmt.delimiter, fmt.separator_line) == (";", True)
    assert list(records(source, fmt)) == [
        (2, ["phone_number", "param1"]),
        (3, ["+447400123456", "Ana, B"]),
    ]


def test_a_file_without_sep_line_is_unchanged() -> None:
    assert sniff(io.BytesIO(b"phone_number,sep\n+44,x\n")).separator_line is False


def test_undecodable_bytes_after_the_sample_name_the_line() -> None:
    body = b"phone,param1\n" + b"+447400123456,Ana\n" * 20_000 + b"+44,\xff\xfe\n"
    source = io.BytesIO(body)
    fmt = sniff(source)
    assert fmt.encoding == "utf-8"
    with pytest.raises(FileError, match="Line 20002 is not valid utf-8 text"):
        list(records(source, fmt))


@pytest.mark.parametrize(
    ("header", "phone", "params", "attributes"),
    [
        (["phone_number", "param1", "param2"], 0, [("1", 1), ("2", 2)], []),
        ([" Phone Number ", "{{1}}", "Param 2", "City"], 0, [("1", 1), ("2", 2)], [("city", 3)]),
        (["\ufeffPHONE", "2", "1"], 0, [("1", 2), ("2", 1)], []),
        (["name", "MSISDN", "parameter_1", "param_2"], 1, [("1", 2), ("2", 3)], [("name", 0)]),
    ],
)
def test_positional_columns_match_loosely(
    header: list[str], phone: int, params: list[tuple[str, int]], attributes: list[tuple[str, int]]
) -> None:
    columns = match_columns(header, POSITIONAL)
    assert (columns.phone, list(columns.params), list(columns.attributes)) == (
        phone,
        params,
        attributes,
    )


def test_named_columns_match_loosely_and_missing_ones_are_named() -> None:
    columns = match_columns(["Phone", "First Name", "{{order_id}}"], NAMED)
    assert list(columns.params) == [("first_name", 1), ("order_id", 2)]
    with pytest.raises(
        ValidationFailed, match=r"parameter \{\{order_id\}\} \(expected a column named order_id\)"
    ):
        match_columns(["phone", "first_name"], NAMED)
    with pytest.raises(ValidationFailed, match="no phone_number column"):
        match_columns(["mobile phone", "first_name", "order_id"], NAMED)


def test_header_written_for_templates_is_matched_back() -> None:
    assert csv_header(POSITIONAL) == ["phone_number", "param1", "param2"]
    assert csv_header(NAMED) == ["phone_number", "first_name", "order_id"]
    for template in (POSITIONAL, NAMED):
        assert [i for _, i in match_columns(csv_header(template), template).params] == [1, 2]


def test_header_and_button_columns_are_written_as_templates_show_names_them() -> None:
    template = Template(
        parameter_format="POSITIONAL", parameter_names=["header_1", "1", "button_0"], body_text=""
    )
    header = csv_header(template)
    assert header == ["phone_number", "header_1", "param1", "button_0"]
    assert list(match_columns(header, template).params) == [
        ("header_1", 1),
        ("1", 2),
        ("button_0", 3),
    ]
    # Files made from the old template download (paramheader_1, parambutton_0) still load.
    old = match_columns(["phone_number", "paramheader_1", "param1", "parambutton_0"], template)
    assert list(old.params) == [("header_1", 1), ("1", 2), ("button_0", 3)]


def test_column_key() -> None:
    assert column_key("  First   Name ") == "first_name"
    assert column_key("{{ order-id }}") == "order_id"


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ("=1+2", "'=1+2"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("+447400123456", "+447400123456"),
        ("Ana", "Ana"),
        ("", ""),
    ],
)
def test_report_cells_cannot_run_as_formulas(cell: str, safe: str) -> None:
    assert safe_cell(cell) == safe


def test_report_lists_rows_with_line_reason_and_original_cells() -> None:
    report = ErrorReport(["phone_number", "=evil"])
    assert report.text() is None
    report.add(3, "phone_empty", "the phone number is empty", ["", "=x"])
    assert report.text() == (
        "line,reason,detail,phone_number,'=evil\r\n3,phone_empty,the phone number is empty,,'=x\r\n"
    )
    report.close()
