"""Who may do what to a broadcast: one rule for buttons, modals, slash commands and App Home.

Anything that sends or spends (send, test-send, schedule, resume, cancel) is for BROADCAST_ADMINS
(users and user groups); without admins configured, for members of the card's channel. Pause,
edit (recipients, Edit…, and Duplicate and Retry failed…, which only make drafts) and reports (and
the audit trail) are for admins and members of the card's channel. Creating a draft is open to
everyone. A refusal changes nothing, is audited, and is told only to the person.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from bot.actors import SLACK
from broadcasts import audit, service
from broadcasts.db import transaction
from broadcasts.errors import NotAuthorised

log = logging.getLogger(__name__)

GROUP_TTL_SECONDS = 60.0
MEMBERS_TTL_SECONDS = 60.0
MAX_MEMBER_PAGES = 50  # 50,000 members; a bigger channel is checked against what was read


class Act(StrEnum):
    """What someone asks to do; the value reads after "can …"."""

    CREATE = "create"
    EDIT = "change the recipients of"
    TEST_SEND = "send a test of"
    SEND = "send"
    SCHEDULE = "schedule"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    REPORT = "get the report of"


SENDS_OR_SPENDS = frozenset({Act.TEST_SEND, Act.SEND, Act.SCHEDULE, Act.RESUME, Act.CANCEL})


class Authoriser:
    """Applies the rule: the admin list (user groups resolved, cached briefly) and membership of
    the card's channel (conversations.members, cached briefly)."""

    def __init__(
        self,
        admin_ids: frozenset[str],
        client: WebClient,
        sessions: sessionmaker[Session] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.admin_ids = admin_ids
        self.client = client
        self.sessions = sessions
        self._clock = clock
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._members_cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def is_admin(self, user_id: str) -> bool:
        if user_id in self.admin_ids:
            return True
        return any(
            user_id in self._members(group) for group in self.admin_ids if group.startswith("S")
        )

    def allowed(self, user_id: str) -> bool:
        """Whether the user may send at all (App Home says so); no admins means everyone."""
        return not self.admin_ids or self.is_admin(user_id)

    def require(self, user_id: str, action: str) -> None:
        """Raise NotAuthorised unless the user is an admin (or no admins are configured): the
        admin half of the rule, for callers without a broadcast; `check` applies the whole rule."""
        if self.allowed(user_id):
            return
        raise NotAuthorised(
            f"Only broadcast admins can {action} a broadcast ({self._admin_names()}); "
            "ask one of them."
        )

    def check(
        self, user_id: str, act: Act, ref: str | None = None, *, from_channel: str | None = None
    ) -> None:
        """Raise NotAuthorised (after auditing the refusal) unless `user_id` may `act` on the
        broadcast `ref`; `from_channel` is where the request came from, when Slack says."""
        if act is Act.CREATE:
            return
        card_channel, broadcast_id = self._broadcast(ref)
        reason = self._refusal(user_id, act, card_channel, from_channel)
        if reason is None:
            return
        log.info("refused %s by %s on broadcast %s", act.name.lower(), user_id, broadcast_id)
        if self.sessions is not None and broadcast_id is not None:
            with transaction(self.sessions) as session:
                audit.record(
                    session,
                    "authz.refused",
                    actor=user_id,
                    via=SLACK,
                    broadcast_id=broadcast_id,
                    act=act.name.lower(),
                    channel=from_channel,
                )
        raise NotAuthorised(reason)

    def _refusal(
        self, user_id: str, act: Act, card_channel: str | None, from_channel: str | None
    ) -> str | None:
        if self.admin_ids and self.is_admin(user_id):
            return None
        if act in SENDS_OR_SPENDS and self.admin_ids:
            return (
                f"Only broadcast admins can {act.value} a broadcast ({self._admin_names()}); "
                "ask one of them."
            )
        if card_channel is None:  # made at the CLI, no card: admins when there are some
            if not self.admin_ids:
                return None
            return f"Only broadcast admins can {act.value} a broadcast without a card."
        if from_channel == card_channel or user_id in self._channel_members(card_channel):
            return None
        who = "broadcast admins and members" if self.admin_ids else "members"
        return f"Only {who} of <#{card_channel}>, where its card is, can {act.value} it."

    def _broadcast(self, ref: str | None) -> tuple[str | None, str | None]:
        """The card's channel and the id of the broadcast `ref` names (NotFoundError if none)."""
        if not ref or self.sessions is None:
            return None, None
        with transaction(self.sessions) as session:
            broadcast = service.get_broadcast(session, ref)
            return broadcast.channel_id, broadcast.id

    def _admin_names(self) -> str:
        return ", ".join(
            f"<!subteam^{i}>" if i.startswith("S") else f"<@{i}>" for i in sorted(self.admin_ids)
        )

    def _members(self, group: str) -> frozenset[str]:
        return self._cached(self._groups, group, GROUP_TTL_SECONDS, self._group_users)

    def _channel_members(self, channel: str) -> frozenset[str]:
        return self._cached(self._members_cache, channel, MEMBERS_TTL_SECONDS, self._read_members)

    def _cached(
        self,
        cache: dict[str, tuple[float, frozenset[str]]],
        key: str,
        ttl: float,
        load: Callable[[str], frozenset[str]],
    ) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            cached = cache.get(key)
            if cached and cached[0] > now:
                return cached[1]
        members = load(key)
        with self._lock:
            cache[key] = (now + ttl, members)
        return members

    def _group_users(self, group: str) -> frozenset[str]:
        try:
            users = self.client.usergroups_users_list(usergroup=group).get("users") or []
        except SlackApiError as exc:
            log.warning("could not list user group %s: %s", group, exc.response.get("error"))
            users = []
        return frozenset(str(u) for u in users)

    def _read_members(self, channel: str) -> frozenset[str]:
        """The channel's members; none when Slack will not say (fails closed)."""
        members: set[str] = set()
        cursor: str | None = None
        try:
            for _ in range(MAX_MEMBER_PAGES):
                page = self.client.conversations_members(channel=channel, limit=1000, cursor=cursor)
                members.update(str(m) for m in page.get("members") or [])
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    break
        except SlackApiError as exc:
            log.warning("could not list members of %s: %s", channel, exc.response.get("error"))
        return frozenset(members)
