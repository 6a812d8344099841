"""Message templates: parse the API's JSON, name their parameters, build send components, render.

Parameter names (the keys of a recipient's params, and so the CSV columns):

- body: positional templates use ``1``, ``2`` … (CSV columns ``param1``, ``param2`` …; both
  spellings are accepted as keys); named templates use the names (``first_name``);
- a text header's variable: ``header_1`` when positional, its own name when named;
- a media header: ``header_image_url`` / ``header_video_url`` / ``header_document_url``;
- a URL button with a variable, a copy-code or one-time-password button: ``button_<index>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
MEDIA_FORMATS = ("IMAGE", "VIDEO", "DOCUMENT")
PLAIN_BUTTONS = ("QUICK_REPLY", "PHONE_NUMBER", "FLOW", "VOICE_CALL")
SUPPORTED = "HEADER (text, image, video, document), BODY, FOOTER and BUTTONS"


class UnsupportedTemplate(ValueError):
    """A template with a component or button we cannot fill in."""


class MissingParameter(ValueError):
    """A recipient lacks a value the template needs."""


@dataclass(frozen=True)
class WaTemplate:
    id: str
    name: str
    language: str
    category: str
    status: str
    parameter_format: str
    parameter_names: list[str]
    components: list[dict[str, Any]]
    body_text: str
    status_reason: str | None = None


@dataclass(frozen=True)
class TemplateSpec:
    name: str
    language: str
    parameter_format: str
    parameter_names: list[str] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Slot:
    """One value a send must supply, and where it goes."""

    name: str
    where: str  # header | body | button
    kind: str  # text | image | video | document | coupon_code
    index: int = 0  # button index
    sub_type: str = ""  # button sub_type


def variables(text: str) -> list[str]:
    """The variables of a text in order of first appearance, each once."""
    seen: dict[str, None] = {}
    for match in VARIABLE.finditer(text or ""):
        seen.setdefault(match.group(1), None)
    return list(seen)


def _ordered(names: list[str], positional: bool) -> list[str]:
    return sorted(names, key=int) if positional and all(n.isdigit() for n in names) else names


def _slots(components: Sequence[Mapping[str, Any]], parameter_format: str) -> list[_Slot]:
    positional = parameter_format.upper() != "NAMED"
    slots: list[_Slot] = []
    by_type = {str(c.get("type", "")).upper(): c for c in components}
    header = by_type.get("HEADER")
    if header is not None:
        fmt = str(header.get("format", "TEXT")).upper()
        if fmt == "TEXT":
            for name in _ordered(variables(str(header.get("text", ""))), positional):
                slots.append(_Slot(f"header_{name}" if positional else name, "header", "text"))
        elif fmt in MEDIA_FORMATS:
            kind = fmt.lower()
            slots.append(_Slot(f"header_{kind}_url", "header", kind))
        else:
            raise UnsupportedTemplate(f"a {fmt} header is not supported (supported: {SUPPORTED})")
    body = by_type.get("BODY")
    if body is not None:
        for name in _ordered(variables(str(body.get("text", ""))), positional):
            slots.append(_Slot(name, "body", "text"))
    buttons = by_type.get("BUTTONS")
    for index, button in enumerate(buttons.get("buttons", []) if buttons else []):
        kind = str(button.get("type", "")).upper()
        if kind == "URL":
            if variables(str(button.get("url", ""))):
                slots.append(_Slot(f"button_{index}", "button", "text", index, "url"))
        elif kind == "COPY_CODE":
            slots.append(_Slot(f"button_{index}", "button", "coupon_code", index, "copy_code"))
        elif kind == "OTP":
            slots.append(_Slot(f"button_{index}", "button", "text", index, "url"))
        elif kind not in PLAIN_BUTTONS:
            raise UnsupportedTemplate(f"a {kind} button is not supported")
    for kind in by_type:
        if kind not in ("HEADER", "BODY", "FOOTER", "BUTTONS"):
            raise UnsupportedTemplate(
                f"the {kind} component is not supported (supported: {SUPPORTED})"
            )
    return slots


def parameter_names(components: Sequence[Mapping[str, Any]], parameter_format: str) -> list[str]:
    names: dict[str, None] = {}
    for slot in _slots(components, parameter_format):
        names.setdefault(slot.name, None)
    return list(names)


def parse_template(data: Mapping[str, Any]) -> WaTemplate:
    """A template from the message_templates API; UnsupportedTemplate names what we cannot send."""
    name = str(data.get("name", ""))
    language = str(data.get("language", ""))
    components = [dict(c) for c in data.get("components", []) or []]
    body = next((c for c in components if str(c.get("type", "")).upper() == "BODY"), {})
    body_text = str(body.get("text", ""))
    fmt = str(data.get("parameter_format") or "").upper()
    if fmt not in ("POSITIONAL", "NAMED"):
        body_vars = variables(body_text)
        fmt = "NAMED" if body_vars and not all(v.isdigit() for v in body_vars) else "POSITIONAL"
    try:
        names = parameter_names(components, fmt)
    except UnsupportedTemplate as exc:
        raise UnsupportedTemplate(f"template '{name}' ({language}): {exc}") from None
    reason = data.get("rejected_reason")
    return WaTemplate(
        id=str(data.get("id", "")),
        name=name,
        language=language,
        category=str(data.get("category", "")).upper(),
        status=str(data.get("status", "")).upper(),
        parameter_format=fmt,
        parameter_names=names,
        components=components,
        body_text=body_text,
        status_reason=str(reason) if reason and reason != "NONE" else None,
    )


def param_value(params: Mapping[str, Any], name: str) -> str | None:
    """A recipient's value for `name`; positional `1` may also be given as `param1`."""
    for key in (name, f"param{name}") if name.isdigit() else (name,):
        value = params.get(key)
        if value is not None and str(value) != "":
            return str(value)
    return None


def build_components(spec: TemplateSpec, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The `template.components` of a send, with every value taken from `params`."""
    named = spec.parameter_format.upper() == "NAMED"
    header: list[dict[str, Any]] = []
    body: list[dict[str, Any]] = []
    buttons: list[dict[str, Any]] = []
    for slot in _slots(spec.components, spec.parameter_format):
        value = param_value(params, slot.name)
        if value is None:
            raise MissingParameter(f"parameter '{slot.name}' of template '{spec.name}' is missing")
        if slot.where == "button":
            parameter: dict[str, Any] = (
                {"type": "coupon_code", "coupon_code": value}
                if slot.kind == "coupon_code"
                else {"type": "text", "text": value}
            )
            buttons.append(
                {
                    "type": "button",
                    "sub_type": slot.sub_type,
                    "index": str(slot.index),
                    "parameters": [parameter],
                }
            )
        elif slot.kind in ("image", "video", "document"):
            header.append({"type": slot.kind, slot.kind: {"link": value}})
        else:
            parameter = {"type": "text", "text": value}
            if named:
                parameter["parameter_name"] = slot.name
            (header if slot.where == "header" else body).append(parameter)
    components: list[dict[str, Any]] = []
    if header:
        components.append({"type": "header", "parameters": header})
    if body:
        components.append({"type": "body", "parameters": body})
    components.extend(buttons)
    return components


def render_body(body_text: str, params: Mapping[str, Any]) -> str:
    """The body as the recipient reads it; unknown variables stay as `{{name}}`."""

    def value(match: re.Match[str]) -> str:
        found = param_value(params, match.group(1))
        return found if found is not None else match.group(0)

    return VARIABLE.sub(value, body_text or "")


def csv_column(name: str) -> str:
    """The CSV column of a parameter: `param1` for positional `1`, the name otherwise."""
    return f"param{name}" if name.isdigit() else name


def csv_header(names: Sequence[str]) -> list[str]:
    return ["phone_number", *(csv_column(n) for n in names)]
