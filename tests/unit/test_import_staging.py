"""Encoding checked rows for the bulk load: the same JSON json.dumps writes, escaped for COPY
(with a flag on PostgreSQL for a row whose number an earlier row of the chunk has)."""

from __future__ import annotations

import json
import random

from broadcasts.imports.bulk import Staged, json_object

_CHARS = 'aZ09 "\\\t\n\r\x00\x1f\x7fé€😀\u2028/,:{}'


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _text(rng: random.Random, longest: int) -> str:
    return "".join(rng.choice(_CHARS) for _ in range(rng.randint(0, longest)))


def test_json_object_writes_what_json_dumps_writes() -> None:
    rng = random.Random(15)
    for _ in range(20_000):
        values = {_text(rng, 5): _text(rng, 8) for _ in range(rng.randint(0, 4))}
        assert json_object(values) == _dumps(values)


def test_sqlite_payload_is_the_json_array_of_each_row() -> None:
    rng = random.Random(16)
    staged = Staged(postgres=False)
    expected = []
    for line in range(2, 502):
        params = {"1": _text(rng, 6), "name": _text(rng, 6)}
        name = _text(rng, 4) if line % 3 else None
        attrs = {"city": _text(rng, 5)} if line % 2 else {}
        staged.add(line, f"+4474{line:08d}", params, name, attrs)
        expected.append([line, f"+4474{line:08d}", params, name, attrs or None])
    assert json.loads(staged.payload()) == expected
    assert staged.payload() == _dumps(expected)
    assert staged.rows == 500 and staged.with_attributes


def test_postgres_payload_reads_back_as_copy_text() -> None:
    rng = random.Random(17)
    staged = Staged(postgres=True)
    expected = []
    for line in range(2, 502):
        params = {"1": _text(rng, 6)}
        name = _text(rng, 4) if line % 3 else None
        number = line if line % 7 else 3  # every 7th row repeats line 3's number
        staged.add(line, f"+4474{number:08d}", params, name, {})
        repeat = "t" if line > 3 and number == 3 else "f"
        expected.append((str(line), f"+4474{number:08d}", _dumps(params), name, None, repeat))
    assert [_copy_fields(row) for row in staged.payload().split("\n")[:-1]] == expected
    assert not staged.with_attributes


def _copy_fields(row: str) -> tuple[str | None, ...]:
    """PostgreSQL's reading of one COPY text row (tab-separated, backslash escapes, \\N null)."""
    fields = row.split("\t")
    escapes = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
    out: list[str | None] = []
    for field in fields:
        if field == "\\N":
            out.append(None)
            continue
        text, i = [], 0
        while i < len(field):
            if field[i] == "\\":
                text.append(escapes[field[i + 1]])
                i += 2
            else:
                text.append(field[i])
                i += 1
        out.append("".join(text))
    return tuple(out)
