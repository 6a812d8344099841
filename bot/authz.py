"""Who may send, schedule, resume or cancel: BROADCAST_ADMINS users and user groups."""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from broadcasts.errors import NotAuthorised

log = logging.getLogger(__name__)

GROUP_TTL_SECONDS = 60.0


class Authoriser:
    """Checks a Slack user against the admin list, resolving user groups (cached briefly)."""

    def __init__(self, admin_ids: frozenset[str], client: WebClient) -> None:
        self.admin_ids = admin_ids
        self.client = client
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    @property
    def restricted(self) -> bool:
        return bool(self.admin_ids)

    def allowed(self, user_id: str) -> bool:
        if not self.admin_ids or user_id in self.admin_ids:
            return True
        return any(
            user_id in self._members(group) for group in self.admin_ids if group.startswith("S")
        )

    def require(self, user_id: str, action: str) -> None:
        """Raise NotAuthorised with a sentence naming who may `action`."""
        if self.allowed(user_id):
            return
        names = ", ".join(
            f"<!subteam^{i}>" if i.startswith("S") else f"<@{i}>" for i in sorted(self.admin_ids)
        )
        raise NotAuthorised(
            f"Only broadcast admins can {action} a broadcast ({names}); ask one of them."
        )

    def _members(self, group: str) -> frozenset[str]:
        now = time.monotonic()
        with self._lock:
            cached = self._groups.get(group)
            if cached and cached[0] > now:
                return cached[1]
        try:
            users = self.client.usergroups_users_list(usergroup=group).get("users") or []
        except SlackApiError as exc:
            log.warning("could not list user group %s: %s", group, exc.response.get("error"))
            users = []
        members = frozenset(str(u) for u in users)
        with self._lock:
            self._groups[group] = (now + GROUP_TTL_SECONDS, members)
        return members
