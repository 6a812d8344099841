"""Reading an uploaded CSV: refuse binaries, detect the encoding and delimiter, stream the rows."""

from __future__ import annotations

import codecs
import csv
import io
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, BinaryIO

import charset_normalizer

from broadcasts.errors import ValidationFailed

SAMPLE_BYTES = 256 * 1024
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook?): save it as CSV first"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Office document (.xls): save it as CSV first"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"RIFF", "a media file"),
)
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]{4,}")
# Excel's "sep=;" first line: names the delimiter and is not part of the data.
_SEP_LINE = re.compile(r'^"?sep=([^\w\s"\'])"?\s*$', re.IGNORECASE)


class FileError(ValidationFailed):
    """A problem with the whole file: nothing of it is imported."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="file")


@dataclass(frozen=True)
class CsvFormat:
    encoding: str
    delimiter: str
    # The file starts with Excel's `sep=<delimiter>` line, skipped when reading records.
    separator_line: bool = False


def seekable_copy(source: BinaryIO, max_bytes: int) -> tuple[BinaryIO, bool]:
    """`source` itself when it can be re-read, else a copy in a temporary file (bounded).

    Returns (file, owned): an owned file is the caller's to close.
    """
    try:
        if source.seekable():
            return source, False
    except (AttributeError, ValueError):
        pass
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)  # noqa: SIM115
    copied = 0
    while chunk := source.read(1024 * 1024):
        copied += len(chunk)
        if copied > max_bytes:
            spool.close()
            raise too_large(max_bytes)
        spool.write(chunk)
    spool.seek(0)
    return spool, True  # type: ignore[return-value]


def too_large(max_bytes: int) -> FileError:
    return FileError(
        f"The file is larger than the {_size(max_bytes)} limit; split it into smaller files."
    )


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:g} MB" if n >= 1024 * 1024 else f"{n:,} bytes"


def file_size(source: BinaryIO) -> int:
    position = source.tell()
    size = source.seek(0, io.SEEK_END)
    source.seek(position)
    return size


def detect_encoding(sample: bytes, *, complete: bool) -> str:
    """The codec to read the file with; FileError for empty or binary files.

    UTF-8 (with or without BOM) and UTF-16 with a BOM are recognised exactly. Anything else is
    read as Windows-1252 (what Excel writes in Western Europe; a superset of Latin-1) when it
    decodes as such into plausible text, else as charset-normalizer's best guess.
    """
    if not sample:
        raise FileError("The file is empty.")
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for magic, kind in _MAGIC:
        if sample.startswith(magic):
            raise FileError(f"This is not a CSV file: it looks like {kind}.")
    if b"\x00" in sample:
        raise FileError("This is not a text CSV file: it contains binary (NUL) bytes.")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=complete)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        text = sample.decode("cp1252")
        if not _NON_ASCII_RUN.search(text):
            _reject_control_characters(text)
            return "cp1252"
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(sample).best()
    if best is None or best.encoding is None:
        raise FileError("This is not a text CSV file: its encoding cannot be recognised.")
    _reject_control_characters(str(best))
    return str(best.encoding)


def _reject_control_characters(text: str) -> None:
    controls = sum(1 for c in text if ord(c) < 32 and c not in "\t\r\n")
    if controls > max(3, len(text) // 100):
        raise FileError("This is not a text CSV file: it is full of control characters.")


def detect_delimiter(text: str) -> str:
    """The delimiter of the header line: the most frequent of , ; TAB | outside quotes."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return ","
    header = _outside_quotes(lines[0])
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts.values())
    if best == 0:
        return ","
    tied = [d for d in DELIMITERS if counts[d] == best]
    if len(tied) > 1 and len(lines) > 1:
        second = _outside_quotes(lines[1])
        consistent = [d for d in tied if second.count(d) == best]
        tied = consistent or tied
    return tied[0]


def _outside_quotes(line: str) -> str:
    return re.sub(r'"[^"]*"', "", line)


def sniff(source: BinaryIO) -> CsvFormat:
    """Encoding and delimiter, from the first SAMPLE_BYTES of a seekable file."""
    source.seek(0)
    sample = source.read(SAMPLE_BYTES)
    complete = len(sample) < SAMPLE_BYTES
    encoding = detect_encoding(sample, complete=complete)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=complete)
    text = text.lstrip("\ufeff")
    first = text.partition("\n")[0]
    declared = _SEP_LINE.match(first.rstrip("\r"))
    if declared:
        return CsvFormat(encoding=encoding, delimiter=declared.group(1), separator_line=True)
    return CsvFormat(encoding=encoding, delimiter=detect_delimiter(text))


def records(source: BinaryIO, fmt: CsvFormat) -> Iterator[tuple[int, list[str]]]:
    """(line number of the record's first line, cells) for every record, header included.

    Raises FileError for what makes the rest of the file unreadable: bytes that are not valid in
    the detected encoding, NUL bytes, or a quoted field that never ends.
    """
    source.seek(0)
    text = io.TextIOWrapper(source, encoding=fmt.encoding, errors="strict", newline="")
    line = 1
    reader = csv.reader(_checked(text), delimiter=fmt.delimiter)
    try:
        if fmt.separator_line:
            next(reader, None)
            line = reader.line_num + 1
        for cells in reader:
            yield line, cells
            line = reader.line_num + 1
    except UnicodeDecodeError:
        raise FileError(
            f"Line {_undecodable_line(source, fmt.encoding)} is not valid {fmt.encoding} text; "
            "save the file as UTF-8 and upload it again."
        ) from None
    except _NulFound:
        raise FileError(
            f"Line {reader.line_num + 1} contains binary (NUL) bytes; this is not a text CSV file."
        ) from None
    except csv.Error as exc:
        raise FileError(
            f"Line {line} cannot be read ({exc}); a quote is probably never closed."
        ) from None
    finally:
        text.detach()


def _undecodable_line(source: BinaryIO, encoding: str) -> int:
    """The line of the first byte that does not decode (the decoder reads ahead in chunks, so
    the CSV reader's position is not it)."""
    source.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)()
    line = 0
    for line, raw in enumerate(source, start=1):
        try:
            decoder.decode(raw)
        except UnicodeDecodeError:
            return line
    return line


class _NulFound(Exception):
    pass


def _checked(lines: Iterator[str] | IO[str]) -> Iterator[str]:
    for text in lines:
        if "\x00" in text:
            raise _NulFound
        yield text
