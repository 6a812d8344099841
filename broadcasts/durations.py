"""A duration as people read it, the same in Slack, the CLI and the error table's docs."""

from __future__ import annotations


def duration_text(seconds: float) -> str:
    """A short human duration: '45 s', '12 min', '3 h 5 min' ('under 1 s' below a second)."""
    if seconds < 1:
        return "under 1 s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"
