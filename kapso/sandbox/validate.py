"""Checks a template send the way the Cloud API does, returning Meta's error code on failure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kapso.templates import MEDIA_FORMATS, variables


@dataclass(frozen=True)
class Refusal:
    code: int | str  # a Meta code, or Kapso's own (answered with HTTP 422)
    message: str
    details: str


STATUS_CODES = {"PAUSED": 132015, "DISABLED": 132016}


def check_template_status(
    template: dict[str, Any] | None, name: str, language: str
) -> Refusal | None:
    if template is None:
        return Refusal(
            132001,
            "Template name does not exist in the translation",
            f"template name ({name}) does not exist in {language}",
        )
    status = str(template.get("status", "")).upper()
    if status in STATUS_CODES:
        return Refusal(
            STATUS_CODES[status],
            f"Template {status.title()}",
            f"Template {name} is {status.lower()} and cannot be sent",
        )
    if status != "APPROVED":
        return Refusal(
            132001,
            "Template name does not exist in the translation",
            f"template name ({name}) is not approved in {language} (status {status})",
        )
    return None


def _component(sent: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [c for c in sent if str(c.get("type", "")).lower() == kind]


def _text_params(
    expected: list[str],
    given: list[dict[str, Any]],
    named: bool,
    where: str,
    prefix: str,
    values: dict[str, str],
) -> Refusal | None:
    if len(given) != len(expected):
        return Refusal(
            132000,
            "Number of parameters does not match the expected number of params",
            f"{where}: number of localizable_params ({len(given)}) does not match the "
            f"expected number of params ({len(expected)})",
        )
    for position, param in enumerate(given):
        name = param.get("parameter_name")
        if named and (not name or name not in expected):
            return Refusal(
                100,
                "Invalid parameter",
                f"{where}: parameter_name is missing or unknown ({name!r}); expected {expected}",
            )
        if not named and name:
            return Refusal(
                132012,
                "Parameter format does not match format in the created template",
                f"{where}: positional template given a named parameter {name!r}",
            )
        text = param.get("text")
        if param.get("type") != "text" or not isinstance(text, str) or not text.strip():
            return Refusal(131008, "Required parameter is missing", f"{where}: empty text")
        key = str(name) if named else expected[position]
        values[f"{prefix}{key}"] = text
    return None


def check_components(
    template: dict[str, Any], sent: list[dict[str, Any]]
) -> Refusal | dict[str, str]:
    """The parameter values by name (as kapso.templates names them), or why they are refused."""
    named = str(template.get("parameter_format", "POSITIONAL")).upper() == "NAMED"
    by_type = {str(c.get("type", "")).upper(): c for c in template.get("components", [])}
    values: dict[str, str] = {}
    header = by_type.get("HEADER")
    given_header = [p for c in _component(sent, "header") for p in c.get("parameters", [])]
    if header is not None and str(header.get("format", "TEXT")).upper() in MEDIA_FORMATS:
        kind = str(header.get("format")).lower()
        media = given_header[0].get(kind) if len(given_header) == 1 else None
        if not isinstance(media, dict) or not (media.get("link") or media.get("id")):
            return Refusal(
                132012,
                "Parameter format does not match format in the created template",
                f"header: expected one {kind} parameter with a link",
            )
        values[f"header_{kind}_url"] = str(media.get("link") or media.get("id"))
    else:
        expected = variables(str(header.get("text", ""))) if header else []
        refusal = _text_params(
            expected, given_header, named, "header", "" if named else "header_", values
        )
        if refusal:
            return refusal
    body = by_type.get("BODY", {})
    given_body = [p for c in _component(sent, "body") for p in c.get("parameters", [])]
    expected_body = variables(str(body.get("text", "")))
    if not named:
        expected_body = sorted(expected_body, key=lambda v: int(v) if v.isdigit() else 0)
    refusal = _text_params(expected_body, given_body, named, "body", "", values)
    if refusal:
        return refusal
    buttons = by_type.get("BUTTONS", {}).get("buttons", [])
    sent_buttons = {str(c.get("index")): c for c in _component(sent, "button")}
    for index, button in enumerate(buttons):
        kind = str(button.get("type", "")).upper()
        needs = kind in ("COPY_CODE", "OTP") or (
            kind == "URL" and variables(str(button.get("url", "")))
        )
        if not needs:
            continue
        given = sent_buttons.get(str(index), {}).get("parameters") or [{}]
        value = given[0].get("coupon_code") if kind == "COPY_CODE" else given[0].get("text")
        if not value:
            return Refusal(
                131008, "Required parameter is missing", f"button {index} ({kind}) needs a value"
            )
        values[f"button_{index}"] = str(value)
    return values
