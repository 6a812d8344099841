"""Who acts, as each adapter names them: a Slack user by their user id, an operator at the CLI by
their login."""

from __future__ import annotations

import getpass

from broadcasts.actors import Actor

SLACK = "slack"
CLI = "cli"


def slack_user(user_id: str) -> Actor:
    return Actor(id=user_id, via=SLACK)


def cli_operator() -> Actor:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "operator"
    return Actor(id=f"cli:{user}", via=CLI)
