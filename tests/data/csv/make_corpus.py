"""Writes the awkward CSV corpus next to this file (run once; the files are committed).

Each file mimics something real users upload; tests/integration/test_csv_import.py pins what the
import makes of each. Run: .venv/bin/python tests/data/csv/make_corpus.py
"""

from __future__ import annotations

import codecs
from pathlib import Path

HERE = Path(__file__).parent
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


def write(name: str, data: bytes) -> None:
    (HERE / name).write_bytes(data)


def main() -> None:
    # UTF-8 with a BOM (Excel "CSV UTF-8"), CRLF, a header with odd spacing and case.
    write(
        "bom_utf8.csv",
        codecs.BOM_UTF8
        + (
            " Phone_Number ,PARAM1\r\n"
            "+447400123401,Zoë\r\n"
            "+44 7400 123402,José\r\n"
            "+1 (415) 555-2671,Ana\r\n"
        ).encode(),
    )
    # European Excel: semicolons, "Phone Number", accents, an extra attribute column.
    write(
        "semicolon.csv",
        (
            "Phone Number;Param 1;Ville\r\n"
            "+33612345601;Hélène;Orléans\r\n"
            "+33 6 12 34 56 02;François;\r\n"
            "0612345603;Zoé;Paris\r\n"
        ).encode(),
    )
    # Latin-1 / Windows-1252 bytes (not UTF-8), semicolons.
    write(
        "latin1.csv",
        (
            "phone_number;param1\r\n"
            "+4915112345601;Jürgen Müßig\r\n"
            "+4915112345602;Straße\r\n"
            "+34612345603;Begoña\r\n"
        ).encode("cp1252"),
    )
    # What Excel does to numbers: stripped +, scientific notation, 00 prefix, national format.
    write(
        "excel_mangled.csv",
        (
            b"phone_number,param1\n"
            b"447400123501,Stripped plus\n"
            b"4.474E+11,Scientific\n"
            b"4.47400123502E+11,Scientific long\n"
            b"00447400123503,Double zero\n"
            b"07400 123504,National\n"
            b"+44 (0) 7400 123505,Trunk zero\n"
            b"123,Too short\n"
            b"+4474001235061234,Too long\n"
            b"+44 74OO 123507,Letters\n"
            b",Empty\n"
            b"+999 1234567,Bad country\n"
        ),
    )
    # Blank lines, whitespace-only lines and rows of empty cells: skipped, not counted.
    write(
        "blank_lines.csv",
        (b"\nphone_number,param1\n\n+447400123601,One\n   \n,\n+447400123602,Two\n\n\n"),
    )
    # Quoted cells: a newline inside a parameter (rejected: WhatsApp refuses it), a comma and
    # quotes inside a value (fine), and a row with more cells than the header.
    write(
        "quoted_newlines.csv",
        (
            b"phone_number,param1\n"
            b'+447400123701,"Line one\nline two"\n'
            b'+447400123702,"Smith, ""Ana"""\n'
            b"+447400123703,Ana,extra,cells\n"
            b"+447400123704,Ana,,\n"
        ),
    )
    write("header_only.csv", b"phone_number,param1\r\n")
    write("empty.csv", b"")
    write("image.csv", PNG)
    # The same people written differently: one number, four spellings; another twice.
    write(
        "duplicates.csv",
        (
            b"phone_number,param1\n"
            b"+447400123801,First\n"
            b"+44 7400 123801,Same number spaced\n"
            b"447400123801,Same number no plus\n"
            b"+447400123802,Second\n"
            b"00447400123801,Same number 00\n"
            b"+447400123802,Second again\n"
        ),
    )
    # Parameters: empty, whitespace only, tab, five spaces, over-long, missing trailing cell.
    long_value = "x" * 1030
    write(
        "missing_params.csv",
        (
            "phone_number,param1,param2\n"
            "+447400123901,Ana,A-1\n"
            "+447400123902,,A-2\n"
            "+447400123903,   ,A-3\n"
            "+447400123904,Ana\tB,A-4\n"
            "+447400123905,Ana     B,A-5\n"
            f"+447400123906,{long_value},A-6\n"
            "+447400123907,Ana\n"
            "+447400123908,Ana,    A-8   \n"
        ).encode(),
    )
    write(
        "missing_param_column.csv",
        b"phone_number,param1\n+447400124001,Ana\n",
    )
    write("no_phone_column.csv", b"name,param1\nAna,Hello\n")
    # Other delimiters: tab (TSV) and pipe; and Excel's "Unicode text" (UTF-16 LE, tabs).
    write("tabs.tsv", b"phone\tparam1\n+447400124101\tTab\n+447400124102\tSeparated\n")
    write("pipes.csv", b"msisdn|param1\n+447400124201|Pipe\n+447400124202|Separated\n")
    write(
        "utf16.txt",
        codecs.BOM_UTF16_LE
        + "phone_number\tparam1\r\n+447400124301\tÅsa\r\n+447400124302\tŁucja\r\n".encode(
            "utf-16-le"
        ),
    )
    # Cells that a spreadsheet would run as formulas, on rejected rows.
    write(
        "injection.csv",
        (
            b"phone_number,param1,note\n"
            b'"=HYPERLINK(""http://evil.example"",""click"")",Ana,x\n'
            b"+447400124401,,=1+2\n"
            b"@SUM(A1),Ana,-3\n"
            b"+447400124402,Fine,+cmd\n"
        ),
    )
    # Named template columns: header spelled loosely; extra columns become attributes.
    write(
        "named.csv",
        (
            b"Phone,First Name,{{order_id}},Segment\n"
            b"+447400124501,Ana,A-100,vip\n"
            b"+447400124502,Bob,,regular\n"
        ),
    )


if __name__ == "__main__":
    main()
