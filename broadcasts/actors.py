"""Who is acting: a person, named as the adapter they acted through names them, or the system."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    id: str  # the person's id where they acted (a chat user id, `cli:<login>`), or "system"
    via: str  # where they acted ("slack", "cli"), or "system"; the audit log stores it as is

    @classmethod
    def system(cls) -> Actor:
        return cls(id="system", via="system")
