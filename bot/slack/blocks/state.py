"""Parsing of modal state and private_metadata: the one place that reads Slack's view JSON."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.slack.blocks import ids
from bot.slack.blocks.kit import clip

MAX_NUMBER = 1e12  # far above any pace or batch size, far below float trouble
MAX_EPOCH_SECONDS = 253402300799  # 9999-12-31T23:59:59Z, the last second datetime can hold


class FieldError(Exception):
    """A modal input that cannot be accepted; shown on the block `block_id`."""

    def __init__(self, block_id: str, message: str) -> None:
        super().__init__(message)
        self.block_id = block_id
        self.message = message


def metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def with_origin(view: dict[str, Any], channel: str | None) -> dict[str, Any]:
    """`view` carrying the channel whose card opened it, for the submission's authorisation
    (submissions name no channel; private_metadata comes back only as we wrote it)."""
    if not channel:
        return view
    return {**view, "private_metadata": json.dumps({**metadata(view), "origin": channel})}


def origin(view: dict[str, Any]) -> str | None:
    value = metadata(view).get("origin")
    return str(value) if value else None


def _values(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(view.get("state", {}).get("values", {}))


def _element(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    block = _values(view).get(block_id) or {}
    return next(iter(block.values()), {}) if block else {}


def _text(view: dict[str, Any], block_id: str) -> str:
    return str(_element(view, block_id).get("value") or "").strip()


def _selected(view: dict[str, Any], block_id: str) -> str | None:
    opt = _element(view, block_id).get("selected_option")
    return str(opt["value"]) if opt else None


def _number(view: dict[str, Any], block_id: str, *, integer: bool) -> float | int | None:
    raw = _text(view, block_id)
    if not raw:
        return None
    kind = "a whole number" if integer else "a number"
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise FieldError(block_id, f"'{clip(raw, 40)}' is not {kind}.") from None
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise FieldError(block_id, f"'{clip(raw, 40)}' is not a sensible {kind[2:]}.")
    return value


def _id(block_id: str, raw: str | None, what: str) -> int | None:
    """A database id chosen in a select; anything else is a field error, not a crash."""
    if raw is None:
        return None
    if raw.isascii() and raw.isdigit() and len(raw) <= 18:
        return int(raw)
    raise FieldError(block_id, f"That {what} is not one I offered; choose it from the list.")


def template_block(view: dict[str, Any]) -> str | None:
    """The block id of the template select, which carries the configuration id."""
    for block_id in _values(view):
        if block_id.startswith(ids.B_TEMPLATE + "_"):
            return block_id
    for block in view.get("blocks", []):
        if str(block.get("block_id", "")).startswith(ids.B_TEMPLATE + "_"):
            return str(block["block_id"])
    return None


@dataclass(frozen=True)
class NewBroadcastInput:
    name: str
    config_id: int | None
    template_id: int | None
    channel_id: str | None
    rate_mps: float | None
    batch_size: int | None
    batch_pause_seconds: float | None


def new_broadcast(view: dict[str, Any]) -> NewBroadcastInput:
    config = _id(ids.B_CONFIG, _selected(view, ids.B_CONFIG), "configuration")
    tblock = template_block(view)
    template = _id(tblock, _selected(view, tblock), "template") if tblock else None
    channel = _element(view, ids.B_CHANNEL).get("selected_conversation")
    rate = _number(view, ids.B_RATE, integer=False)
    size = _number(view, ids.B_BATCH_SIZE, integer=True)
    pause = _number(view, ids.B_BATCH_PAUSE, integer=False)
    return NewBroadcastInput(
        name=_text(view, ids.B_NAME),
        config_id=config,
        template_id=template,
        channel_id=str(channel) if channel else metadata(view).get("channel"),
        rate_mps=float(rate) if rate is not None else None,
        batch_size=int(size) if size is not None else None,
        batch_pause_seconds=float(pause) if pause is not None else None,
    )


def new_broadcast_partial(view: dict[str, Any]) -> NewBroadcastInput:
    """What is chosen so far (for redrawing the modal); unparsable numbers are ignored."""
    try:
        return new_broadcast(view)
    except FieldError:
        config = _selected(view, ids.B_CONFIG) or ""
        tblock = template_block(view)
        template = (_selected(view, tblock) if tblock else None) or ""
        return NewBroadcastInput(
            name=_text(view, ids.B_NAME),
            config_id=int(config) if config.isascii() and config.isdigit() else None,
            template_id=int(template) if template.isascii() and template.isdigit() else None,
            channel_id=metadata(view).get("channel"),
            rate_mps=None,
            batch_size=None,
            batch_pause_seconds=None,
        )


@dataclass(frozen=True)
class ContactsInput:
    contact_ids: list[int]
    all_eligible: bool


def add_contacts(view: dict[str, Any]) -> ContactsInput:
    chosen = _element(view, ids.B_CONTACTS).get("selected_options") or []
    checks = _element(view, ids.B_ALL_ELIGIBLE).get("selected_options") or []
    return ContactsInput(
        contact_ids=[
            int(str(o["value"]))
            for o in chosen
            if str(o.get("value", "")).isascii() and str(o.get("value", "")).isdigit()
        ],
        all_eligible=any(o.get("value") == ids.ALL_ELIGIBLE_VALUE for o in checks),
    )


def schedule_at(view: dict[str, Any]) -> datetime:
    raw = _element(view, ids.B_WHEN).get("selected_date_time")
    if raw is None:
        raise FieldError(ids.B_WHEN, "Pick a date and time.")
    try:
        seconds = int(raw)
        if abs(seconds) > MAX_EPOCH_SECONDS:
            raise ValueError
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise FieldError(
            ids.B_WHEN, "That is not a date and time the picker gives; pick one."
        ) from None


@dataclass(frozen=True)
class TestInput:
    phone: str
    params: dict[str, str]


def send_test(view: dict[str, Any]) -> TestInput:
    params = {
        block_id.removeprefix(ids.B_PARAM): _text(view, block_id)
        for block_id in _values(view)
        if block_id.startswith(ids.B_PARAM)
    }
    phone = _text(view, ids.B_PHONE)
    if not phone:
        raise FieldError(ids.B_PHONE, "Enter a phone number with its country code.")
    return TestInput(phone=phone, params=params)


@dataclass(frozen=True)
class EditInput:
    name: str
    template_id: int | None
    drop_unfit: bool
    phones: str
    import_id: int | None
    remove_all: bool


def _checked(view: dict[str, Any], block_id: str) -> bool:
    chosen = _element(view, block_id).get("selected_options") or []
    return any(o.get("value") == ids.CHECKED for o in chosen)


def edit_draft(view: dict[str, Any]) -> EditInput:
    template = _selected(view, ids.B_EDIT_TEMPLATE)
    chosen_import = _selected(view, ids.B_EDIT_IMPORT)
    return EditInput(
        name=_text(view, ids.B_EDIT_NAME),
        template_id=int(template) if template and template.isdigit() else None,
        drop_unfit=_checked(view, ids.B_EDIT_DROP_UNFIT),
        phones=_text(view, ids.B_EDIT_PHONES),
        import_id=int(chosen_import) if chosen_import and chosen_import.isdigit() else None,
        remove_all=_checked(view, ids.B_EDIT_ALL),
    )
