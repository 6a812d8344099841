"""Who is acting: a Slack user, an operator at the CLI, or the system itself."""

from __future__ import annotations

import getpass
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    id: str
    via: str  # "slack" | "cli" | "system"

    @classmethod
    def cli(cls) -> Actor:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "operator"
        return cls(id=f"cli:{user}", via="cli")

    @classmethod
    def system(cls) -> Actor:
        return cls(id="system", via="system")

    @classmethod
    def slack(cls, user_id: str) -> Actor:
        return cls(id=user_id, via="slack")
