"""Templates: parameter names, send components for both formats, rendering and CSV headers."""

from __future__ import annotations

from typing import Any

import pytest

from kapso.templates import (
    MissingParameter,
    TemplateSpec,
    UnsupportedTemplate,
    build_components,
    csv_header,
    parse_template,
    render_body,
)

POSITIONAL: dict[str, Any] = {
    "id": "1",
    "name": "order_update",
    "language": "en_US",
    "status": "APPROVED",
    "category": "UTILITY",
    "parameter_format": "POSITIONAL",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
        {"type": "BODY", "text": "Hi {{1}}, your order {{2}} ships {{2}} today."},
        {"type": "FOOTER", "text": "Thanks"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "QUICK_REPLY", "text": "Stop"},
                {"type": "URL", "text": "Track", "url": "https://x.test/t/{{1}}"},
            ],
        },
    ],
}
NAMED: dict[str, Any] = {
    "id": "2",
    "name": "welcome",
    "language": "es",
    "status": "PENDING",
    "category": "MARKETING",
    "parameter_format": "NAMED",
    "components": [
        {"type": "HEADER", "format": "IMAGE"},
        {"type": "BODY", "text": "Hola {{first_name}}, usa {{code}}. {{first_name}}!"},
        {"type": "BUTTONS", "buttons": [{"type": "COPY_CODE", "example": "X"}]},
    ],
}


def test_positional_parameters_are_numbered_with_header_and_button_slots() -> None:
    template = parse_template(POSITIONAL)
    assert template.parameter_format == "POSITIONAL"
    assert template.parameter_names == ["header_1", "1", "2", "button_1"]
    assert template.body_text.startswith("Hi {{1}}")
    assert csv_header(template.parameter_names) == [
        "phone_number",
        "header_1",
        "param1",
        "param2",
        "button_1",
    ]


def test_named_parameters_keep_their_names_once() -> None:
    template = parse_template(NAMED)
    assert template.parameter_names == ["header_image_url", "first_name", "code", "button_0"]
    assert template.status == "PENDING"


def test_parameter_format_is_inferred_when_the_api_omits_it() -> None:
    data = {**NAMED, "parameter_format": None}
    assert parse_template(data).parameter_format == "NAMED"
    data = {**POSITIONAL, "parameter_format": None}
    assert parse_template(data).parameter_format == "POSITIONAL"


def _spec(data: dict[str, Any]) -> TemplateSpec:
    t = parse_template(data)
    return TemplateSpec(t.name, t.language, t.parameter_format, t.parameter_names, t.components)


def test_positional_components_are_in_order_without_names() -> None:
    params = {"header_1": "A-1", "param1": "Ana", "2": "#42", "button_1": "abc"}
    assert build_components(_spec(POSITIONAL), params) == [
        {"type": "header", "parameters": [{"type": "text", "text": "A-1"}]},
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "#42"}],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": "1",
            "parameters": [{"type": "text", "text": "abc"}],
        },
    ]


def test_named_components_carry_parameter_name() -> None:
    params = {
        "header_image_url": "https://x.test/a.png",
        "first_name": "Jessica",
        "code": "HOLA10",
        "button_0": "HOLA10",
    }
    assert build_components(_spec(NAMED), params) == [
        {
            "type": "header",
            "parameters": [{"type": "image", "image": {"link": params["header_image_url"]}}],
        },
        {
            "type": "body",
            "parameters": [
                {"type": "text", "parameter_name": "first_name", "text": "Jessica"},
                {"type": "text", "parameter_name": "code", "text": "HOLA10"},
            ],
        },
        {
            "type": "button",
            "sub_type": "copy_code",
            "index": "0",
            "parameters": [{"type": "coupon_code", "coupon_code": "HOLA10"}],
        },
    ]


def test_a_missing_value_names_the_parameter() -> None:
    with pytest.raises(MissingParameter, match="'2'"):
        build_components(_spec(POSITIONAL), {"1": "Ana", "header_1": "x", "button_1": "y"})


def test_a_template_without_variables_sends_no_components() -> None:
    spec = TemplateSpec("hello", "en", "POSITIONAL", [], [{"type": "BODY", "text": "Hello!"}])
    assert build_components(spec, {}) == []


def test_render_body_fills_both_formats_and_leaves_unknowns() -> None:
    assert render_body("Hi {{1}}, order {{2}}", {"1": "Ana", "param2": "#42"}) == (
        "Hi Ana, order #42"
    )
    assert render_body("Hola {{ first_name }} {{x}}", {"first_name": "Jo"}) == "Hola Jo {{x}}"


@pytest.mark.parametrize(
    ("component", "named"),
    [
        ({"type": "CAROUSEL", "cards": []}, "CAROUSEL component"),
        ({"type": "HEADER", "format": "LOCATION"}, "LOCATION header"),
        ({"type": "BUTTONS", "buttons": [{"type": "CATALOG"}]}, "CATALOG button"),
    ],
)
def test_unsupported_components_are_named(component: dict[str, Any], named: str) -> None:
    data = {**POSITIONAL, "components": [{"type": "BODY", "text": "x"}, component]}
    with pytest.raises(UnsupportedTemplate, match=named) as info:
        parse_template(data)
    assert "order_update" in str(info.value)
