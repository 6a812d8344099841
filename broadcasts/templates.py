"""Stored templates: upsert from a sync, look up, and the rules on which ones may be used."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcasts.enums import TemplateStatus
from broadcasts.errors import NextStep, NotFoundError, ValidationFailed
from broadcasts.models import Template, WhatsAppConfig, utcnow


@dataclass(frozen=True)
class TemplateData:
    """A template as the WhatsApp API describes it, already parsed."""

    name: str
    language: str
    category: str
    status: str
    parameter_format: str
    parameter_names: list[str]
    body_text: str
    components: list[dict[str, Any]] = field(default_factory=list)
    external_id: str | None = None
    status_reason: str | None = None


@dataclass(frozen=True)
class SyncResult:
    added: int
    updated: int
    unchanged: int
    status_changes: list[tuple[str, str, str]]  # (name:language, old, new)


def upsert_templates(
    session: Session, config: WhatsAppConfig, templates: Iterable[TemplateData]
) -> SyncResult:
    existing = {
        (t.name, t.language): t
        for t in session.scalars(select(Template).where(Template.config_id == config.id))
    }
    added = updated = unchanged = 0
    changes: list[tuple[str, str, str]] = []
    now = utcnow()
    for data in templates:
        row = existing.get((data.name, data.language))
        values = {
            "external_id": data.external_id,
            "category": data.category,
            "status": data.status,
            "parameter_format": data.parameter_format,
            "parameter_names": list(data.parameter_names),
            "components": list(data.components),
            "body_text": data.body_text,
            "status_reason": data.status_reason,
        }
        if row is None:
            session.add(
                Template(
                    config_id=config.id,
                    name=data.name,
                    language=data.language,
                    synced_at=now,
                    **values,
                )
            )
            added += 1
            continue
        if row.status != data.status:
            changes.append((f"{data.name}:{data.language}", row.status, data.status))
        dirty = any(getattr(row, k) != v for k, v in values.items())
        for key, value in values.items():
            setattr(row, key, value)
        row.synced_at = now
        if dirty:
            updated += 1
        else:
            unchanged += 1
    session.flush()
    return SyncResult(added=added, updated=updated, unchanged=unchanged, status_changes=changes)


def list_templates(
    session: Session, config: WhatsAppConfig, *, approved_only: bool = False, search: str = ""
) -> list[Template]:
    query = select(Template).where(Template.config_id == config.id)
    if approved_only:
        query = query.where(Template.status == TemplateStatus.APPROVED)
    if search:
        query = query.where(Template.name.contains(search.strip().lower()))
    return list(session.scalars(query.order_by(Template.name, Template.language)))


def template_of(session: Session, config_id: int, template_id: int) -> Template | None:
    """Template `template_id` if it belongs to configuration `config_id`."""
    found = session.get(Template, template_id)
    return found if found is not None and found.config_id == config_id else None


def find_template(session: Session, config: WhatsAppConfig, ref: str | int) -> Template:
    """A template of `config` by id, `name` or `name:language`."""
    ref_s = str(ref).strip()
    template: Template | None = None
    if ref_s.isdigit():
        template = session.get(Template, int(ref_s))
        if template is not None and template.config_id != config.id:
            template = None
    if template is None:
        name, _, language = ref_s.partition(":")
        query = select(Template).where(Template.config_id == config.id, Template.name == name)
        if language:
            query = query.where(Template.language == language)
        candidates = list(session.scalars(query.order_by(Template.language)))
        if len(candidates) > 1:
            approved = [t for t in candidates if t.status == TemplateStatus.APPROVED]
            if len(approved) == 1:
                candidates = approved
            else:
                langs = ", ".join(f"{name}:{t.language}" for t in candidates)
                raise ValidationFailed(
                    f"Template '{name}' exists in several languages; pick one of {langs}.",
                    field="template",
                )
        template = candidates[0] if candidates else None
    if template is None:
        raise NotFoundError(
            f"No template '{ref_s}' on configuration '{config.name}'; "
            "sync the templates if it was created recently.",
            next_step=NextStep.SYNC_TEMPLATES,
        )
    return template


def ensure_approved(template: Template) -> None:
    if template.status != TemplateStatus.APPROVED:
        raise ValidationFailed(
            f"Template '{template.name}' ({template.language}) is {template.status}; "
            "only APPROVED templates can be broadcast.",
            field="template",
        )


def set_status(
    session: Session, template: Template, status: str, reason: str | None = None
) -> bool:
    if template.status == status:
        return False
    template.status = status
    template.status_reason = reason
    session.flush()
    return True
