"""How each adapter tells a user to take the next step a domain error names.

The domain says what is wrong and which action helps (`NextStep`); only here do those actions
become a CLI command or a Slack slash command, so Slack users are never told to run the CLI.
"""

from __future__ import annotations

from broadcasts.errors import BroadcastBotError, NextStep

# `{subject}` is what the step acts on, as the error names it.
CLI = {
    NextStep.ASSIGN_AGENT: "`broadcast-bot configs set-agent {subject} AGENT` assigns one.",
    NextStep.DROP_UNFIT: "`--drop-unfit` removes them.",
    NextStep.LIST_BROADCASTS: "`broadcast-bot broadcasts list` shows them.",
    NextStep.LIST_CONTACTS: "`broadcast-bot contacts list` shows them.",
    NextStep.LIST_IMPORTS: "`broadcast-bot broadcasts imports {subject}` lists them.",
    NextStep.SYNC_TEMPLATES: "`broadcast-bot templates sync` does it.",
}

# Steps a Slack command takes; the rest are an operator's, or a control on the modal the error
# shows on (and modal errors are cut short, so a hint there would not be read).
SLACK = {
    NextStep.LIST_BROADCASTS: "`/broadcast list` shows them.",
    NextStep.SYNC_TEMPLATES: "`/broadcast templates sync` does it.",
}


def for_cli(exc: BroadcastBotError) -> str:
    """The error's sentence, then the CLI command that takes its next step."""
    return _with(exc, CLI)


def for_slack(exc: BroadcastBotError) -> str:
    """The error's sentence, then the slash command that takes its next step, if Slack has one."""
    return _with(exc, SLACK)


def _with(exc: BroadcastBotError, steps: dict[NextStep, str]) -> str:
    how = steps.get(exc.next_step) if exc.next_step else None
    if how is None:
        return str(exc)
    return f"{exc} {how.format(subject=exc.subject or '…')}"
