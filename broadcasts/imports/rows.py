"""Checking one CSV row: its phone number, the template's parameters, and the other columns."""

from __future__ import annotations

import re
from dataclasses import dataclass

from broadcasts.csv_template import ColumnMap
from broadcasts.imports.phones import PHONE_REASONS, Normaliser
from broadcasts.models import Template

BODY_LIMIT = 1024  # WhatsApp's limit on a template body, parameters included
NAME_KEYS = ("name", "full_name", "contact_name")

ROW_REASONS = {
    **PHONE_REASONS,
    "param_missing": "a template parameter is empty",
    "param_invalid": "a template parameter has a line break, a tab or more than 4 spaces in a row",
    "param_too_long": "a template parameter makes the message longer than WhatsApp allows",
    "row_malformed": "the row has more cells than the header",
}
# Rows not invalid but still left out; listed in the error report too.
EXCLUDED_REASONS = {
    "duplicate": "the same number is on an earlier row of this file",
    "opted_out": "this contact opted out of messages",
    "test_contact": "this is a test contact; test contacts are never broadcast to",
}
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


@dataclass(slots=True)
class Row:
    """A row that passed every check."""

    line: int
    phone: str
    params: dict[str, str]
    attributes: dict[str, str]
    name: str | None
    cells: list[str]


@dataclass(slots=True)
class Rejected:
    line: int
    reason: str
    detail: str
    cells: list[str]


class RowChecker:
    """Turns the cells of one record into a Row or a Rejected, with the reason."""

    def __init__(self, columns: ColumnMap, template: Template | None, normalise: Normaliser):
        self.columns = columns
        self.normalise = normalise
        self.width = columns.width
        self.phone_index = columns.phone
        self.params = columns.params
        self.attributes = columns.attributes
        self.labels = {
            name: f"{{{{{name}}}}} (column {columns.header[index].strip()!r})"
            for name, index in columns.params
        }
        body = template.body_text if template is not None else ""
        self.uses = {name: 0 for name, _ in columns.params}
        for found in _PLACEHOLDER.findall(body or ""):
            if found in self.uses:
                self.uses[found] += 1
        self.base_length = len(_PLACEHOLDER.sub("", body or ""))
        self.check_length = bool(body)
        self.template = template
        # (name, column, uses in the body): what the per-row loop needs, in one tuple.
        self.param_columns = [(name, index, self.uses[name]) for name, index in columns.params]

    def check(self, line: int, cells: list[str]) -> Row | Rejected:
        # Runs for every row of every file: lookups are hoisted and cheap tests come first.
        width = self.width
        count = len(cells)
        if count > width and any(c.strip() for c in cells[width:]):
            return Rejected(
                line,
                "row_malformed",
                f"the row has {len(cells)} cells but the header has {width} "
                "(a value containing the delimiter must be quoted)",
                cells,
            )
        raw_phone = cells[self.phone_index] if self.phone_index < count else ""
        phone, reason = self.normalise(raw_phone)
        if phone is None:
            return Rejected(line, reason, PHONE_REASONS[reason], cells)
        params: dict[str, str] = {}
        length = self.base_length
        for name, index, uses in self.param_columns:
            value = cells[index].strip() if index < count else ""
            if not value:
                return Rejected(
                    line, "param_missing", f"parameter {self.labels[name]} is empty", cells
                )
            if "\n" in value or "\r" in value or "\t" in value or "     " in value:
                return Rejected(
                    line,
                    "param_invalid",
                    f"parameter {self.labels[name]} contains a line break, a tab or more than "
                    "4 consecutive spaces, which WhatsApp rejects",
                    cells,
                )
            if len(value) > BODY_LIMIT:
                return Rejected(
                    line,
                    "param_too_long",
                    f"parameter {self.labels[name]} is {len(value)} characters long "
                    f"(WhatsApp allows {BODY_LIMIT})",
                    cells,
                )
            length += len(value) * uses
            params[name] = value
        if self.check_length and length > BODY_LIMIT:
            return Rejected(
                line,
                "param_too_long",
                f"with these parameters the message is {length} characters long "
                f"(WhatsApp allows {BODY_LIMIT})",
                cells,
            )
        if not self.attributes:
            return Row(line, phone, params, {}, None, cells)
        attributes: dict[str, str] = {}
        contact_name: str | None = None
        for key, index in self.attributes:
            if index < count:
                value = cells[index].strip()
                if value:
                    attributes[key] = value
                    if contact_name is None and key in NAME_KEYS:
                        contact_name = value[:255]
        return Row(line, phone, params, attributes, contact_name, cells)


def describe(reason: str) -> str:
    return ROW_REASONS.get(reason) or EXCLUDED_REASONS.get(reason) or reason
