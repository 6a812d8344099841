"""The settings a process reads: the domain's (broadcasts/settings.py) and the WhatsApp
providers' (kapso/settings.py), from the same environment and `.env`, as one object."""

from __future__ import annotations

from broadcasts.settings import CoreSettings, read_settings
from kapso.settings import ProviderSettings


class Settings(CoreSettings, ProviderSettings):
    """Everything the processes read from the environment; secrets never leave this object."""


def load_settings(**overrides: object) -> Settings:
    """Read the settings, or stop with one line naming the variable that is wrong."""
    return read_settings(Settings, **overrides)
