"""Who a Teams user is to Leash, and the names under which a conversation is remembered."""

from __future__ import annotations

import copy
import html
import json
import logging
import re
import time
from dataclasses import dataclass

from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsInfo
from botbuilder.schema import Activity, ConversationReference

from bot.domain.actors import Actor
from bot.domain.states import ActorKind
from bot.surfaces.teams.connector import ConnectorRetry

log = logging.getLogger("leash.teams")

PLATFORM = "teams"
CACHE_SECONDS = 600.0
_TAG = re.compile(r"<[^>]+>")


def command_text(context: TurnContext) -> str:
    """What the user typed, without the bot's @mention and Teams' HTML."""
    activity = context.activity
    text = activity.text or ""
    if activity.entities:
        text = TurnContext.remove_recipient_mention(activity) or text
    return " ".join(html.unescape(_TAG.sub(" ", text)).split())


@dataclass(frozen=True, slots=True)
class Conversation:
    """A place Leash can post to later: its reference and the names it is known by."""

    keys: tuple[str, ...]
    reference: str
    label: str


def _channel_data(activity: Activity) -> dict[str, object]:
    data = activity.channel_data
    return data if isinstance(data, dict) else {}


def _named(value: object) -> tuple[str, str]:
    """(id, name) of a channelData `team` or `channel` entry."""
    if not isinstance(value, dict):
        return "", ""
    return str(value.get("id") or ""), str(value.get("name") or "")


def conversations_of(activity: Activity, email: str | None) -> list[Conversation]:
    """The conversations an activity shows Leash: the user's own chat, or a team's channel."""
    reference = TurnContext.get_conversation_reference(activity)
    reference.activity_id = None  # what Leash posts later starts anew, it replies to nothing
    found: list[Conversation] = []
    conversation = activity.conversation
    kind = getattr(conversation, "conversation_type", None) or "personal"
    user = activity.from_property
    if kind == "personal" and user is not None:
        names = (user.id, getattr(user, "aad_object_id", None), email)
        label = email or getattr(user, "name", None) or user.id
        found.append(Conversation(tuple(k for k in names if k), _dump(reference), label))
    team_id, team_name = _named(_channel_data(activity).get("team"))
    channel_id, channel_name = _named(_channel_data(activity).get("channel"))
    if team_id:
        # Post new threads to the channel itself, not into the thread this came from.
        channel_ref = copy.deepcopy(reference)
        channel_ref.conversation.id = channel_id or team_id
        keys: list[str] = [channel_id or team_id]
        if not channel_id or channel_id == team_id:
            keys += [team_id, team_name]  # the team's General channel
        if team_name and channel_name:
            keys.append(f"{team_name}/{channel_name}")
        label = f"{team_name or team_id}/{channel_name or 'General'}"
        found.append(Conversation(tuple(k for k in keys if k), _dump(channel_ref), label))
    return found


def _dump(reference: ConversationReference) -> str:
    return json.dumps(reference.serialize(), separators=(",", ":"))


def load_reference(address: str) -> ConversationReference:
    return ConversationReference().deserialize(json.loads(address))


class People:
    """Resolves a Teams user to an Actor (e-mail first), caching the roster lookup."""

    def __init__(self, retry: ConnectorRetry) -> None:
        self._retry = retry
        self._emails: dict[str, tuple[float, str | None]] = {}

    async def email_of(self, context: TurnContext) -> str | None:
        """The user's e-mail from the roster (owners are often registered by e-mail)."""
        user = context.activity.from_property
        if user is None or not user.id:
            return None
        cached = self._emails.get(user.id)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        email: str | None = None
        try:
            member = await self._retry(lambda: TeamsInfo.get_member(context, user.id))
            email = getattr(member, "email", None) or getattr(member, "user_principal_name", None)
        except Exception as error:
            log.info("the roster has no e-mail for %s: %s", user.id, error)
        self._emails[user.id] = (time.monotonic(), email)
        return email

    async def actor(self, context: TurnContext) -> Actor:
        """The sender as Leash sees them: e-mail if known, else their Entra object id."""
        user = context.activity.from_property
        aad = getattr(user, "aad_object_id", None) if user else None
        teams_id = user.id if user else None
        email = await self.email_of(context)
        name = email or aad or teams_id or "unknown-teams-user"
        aliases = tuple(dict.fromkeys(a for a in (aad, teams_id) if a and a != name))
        return Actor(name=name, kind=ActorKind.USER, origin=PLATFORM, aliases=aliases)
