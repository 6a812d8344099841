"""The CSV layout of a broadcast: the header we hand out and how uploaded headers are matched."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

from broadcasts.enums import ParameterFormat
from broadcasts.errors import ValidationFailed
from broadcasts.models import Template

PHONE_COLUMN = "phone_number"
# Accepted names of the phone column, in order of preference (compared as column_key does).
PHONE_ALIASES = (
    "phone_number",
    "phone",
    "phonenumber",
    "mobile",
    "mobile_number",
    "msisdn",
    "whatsapp",
    "whatsapp_number",
    "wa_id",
    "telephone",
    "tel",
)
_SEPARATORS = re.compile(r"[\s_\-]+")


def column_key(name: str) -> str:
    """A header cell compared case-, space- and brace-insensitively: ' First Name ' → first_name."""
    text = name.replace("\ufeff", "").strip().strip("{}").strip().casefold()
    return _SEPARATORS.sub("_", text).strip("_")


def _compact(key: str) -> str:
    return key.replace("_", "")


def parameter_aliases(template: Template, name: str) -> tuple[str, ...]:
    """Column keys accepted for one template parameter.

    Body variables of positional templates are numbers, so their column is `param1` (the seed's
    name) or just `1`; header and button variables (`header_1`, `button_0`) are named columns in
    every template. Files written before those names were canonical (`paramheader_1`) still load.
    """
    if template.parameter_format == ParameterFormat.POSITIONAL:
        return (name, f"param{name}", f"param_{name}", f"parameter{name}", f"parameter_{name}")
    return (column_key(name),)


def parameter_column(template: Template, name: str) -> str:
    """The canonical column of a parameter: param1 for body {{1}}, otherwise the name itself
    (header_1, button_0, first_name): what `templates show` and docs/csv.md call it."""
    if template.parameter_format == ParameterFormat.POSITIONAL and name.isdigit():
        return f"param{name}"
    return name


def csv_header(template: Template) -> list[str]:
    """The header of the CSV a broadcast of this template expects."""
    return [PHONE_COLUMN, *(parameter_column(template, n) for n in template.parameter_names)]


def template_csv(template: Template) -> str:
    """The CSV template file (header only) for this template."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(csv_header(template))
    return out.getvalue()


@dataclass(frozen=True)
class ColumnMap:
    """Where things are in an uploaded file: phone, each template parameter, other attributes."""

    header: tuple[str, ...]
    phone: int
    params: tuple[tuple[str, int], ...]  # (parameter name, column index)
    attributes: tuple[tuple[str, int], ...]  # (attribute key, column index)

    @property
    def width(self) -> int:
        return len(self.header)


def match_columns(header: Sequence[str], template: Template | None) -> ColumnMap:
    """Match an uploaded header to the phone column and the template's parameters.

    Raises ValidationFailed naming the missing column: a file without a phone column or without a
    column for one of the template's parameters cannot be imported at all.
    """
    keys = [column_key(h) for h in header]
    compact = [_compact(k) for k in keys]
    phone = next(
        (compact.index(_compact(a)) for a in PHONE_ALIASES if _compact(a) in compact), None
    )
    if phone is None:
        seen = ", ".join(h.strip() for h in header if h.strip()) or "none"
        raise ValidationFailed(
            f"The file has no phone_number column (columns found: {seen}); "
            f"name the column phone_number (or one of: {', '.join(PHONE_ALIASES[1:])}).",
            field="phone_number",
        )
    params: list[tuple[str, int]] = []
    used = {phone}
    for name in template.parameter_names if template is not None else []:
        assert template is not None
        aliases = {_compact(a) for a in parameter_aliases(template, str(name))}
        index = next(
            (i for i, c in enumerate(compact) if c in aliases and i not in used and c), None
        )
        if index is None:
            raise ValidationFailed(
                f"The file has no column for template parameter {{{{{name}}}}} "
                f"(expected a column named {parameter_column(template, str(name))}).",
                field=parameter_column(template, str(name)),
            )
        used.add(index)
        params.append((str(name), index))
    attributes = tuple((keys[i], i) for i in range(len(header)) if i not in used and keys[i])
    return ColumnMap(tuple(header), phone, tuple(params), _unique_attributes(attributes))


def _unique_attributes(pairs: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    seen: set[str] = set()
    out: list[tuple[str, int]] = []
    for key, index in pairs:
        if key not in seen:
            seen.add(key)
            out.append((key, index))
    return tuple(out)


def attribute_value(attributes: dict[str, object], template: Template, name: str) -> str | None:
    """A parameter's value from contact attributes whose keys are matched like CSV columns."""
    aliases = {_compact(a) for a in parameter_aliases(template, name)}
    for key, value in attributes.items():
        if _compact(column_key(str(key))) in aliases and value not in (None, ""):
            return str(value)
    return None
