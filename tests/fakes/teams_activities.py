"""Bot Framework activities exactly as Microsoft Teams posts them to a bot's messaging endpoint."""

from __future__ import annotations

import copy
import itertools
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

JsonDict = dict[str, Any]
ConversationType = Literal["personal", "channel", "groupChat"]

TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
BOT_ID = "28:leash-bot"
BOT_NAME = "Leash"
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"

_NAMESPACE = uuid.UUID("6f1c3e2a-5b7d-4c1e-9a8f-1d2e3f4a5b6c")
# Teams message ids are epoch milliseconds; a shared counter keeps them unique and increasing.
_message_ids = itertools.count(int(time.time() * 1000))


def next_message_id() -> str:
    """Return a fresh Teams message id (epoch milliseconds, unique in this process)."""
    return str(next(_message_ids))


def _stable_uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


@dataclass(frozen=True, slots=True)
class TeamsUser:
    """A person in the tenant, as Teams and Microsoft Graph know them."""

    teams_id: str
    aad_object_id: str
    name: str
    email: str

    @classmethod
    def named(cls, short: str, *, email: str | None = None, name: str | None = None) -> TeamsUser:
        """Make a user "29:<short>" with a stable AAD object id derived from the short name."""
        return cls(
            teams_id=f"29:{short}",
            aad_object_id=_stable_uuid("user", short),
            name=name or short.title(),
            email=email or f"{short}@example.com",
        )

    @property
    def personal_conversation_id(self) -> str:
        """Return the id of this user's 1:1 chat with the bot."""
        return f"a:1{uuid.UUID(_stable_uuid('personal', self.aad_object_id)).hex}"

    def account(self) -> JsonDict:
        """Return the ChannelAccount Teams puts in `from` and `membersAdded`."""
        return {"id": self.teams_id, "name": self.name, "aadObjectId": self.aad_object_id}

    def teams_channel_account(self) -> JsonDict:
        """Return the TeamsChannelAccount the Bot Connector answers for get member."""
        given, _, surname = self.name.partition(" ")
        return {
            "id": self.teams_id,
            "name": self.name,
            "aadObjectId": self.aad_object_id,
            "email": self.email,
            "userPrincipalName": self.email,
            "givenName": given,
            "surname": surname or None,
            "tenantId": TENANT_ID,
            "userRole": "user",
        }


@dataclass(frozen=True, slots=True)
class TeamsChannel:
    """A channel of a team; Teams ids both as "19:...@thread.tacv2"."""

    team_id: str
    team_name: str
    channel_id: str
    channel_name: str

    @classmethod
    def named(cls, team: str, channel: str = "General") -> TeamsChannel:
        """Make a channel with stable thread ids; "General" shares its id with the team."""
        team_id = f"19:{uuid.UUID(_stable_uuid('team', team)).hex}@thread.tacv2"
        channel_id = (
            team_id
            if channel == "General"
            else f"19:{uuid.UUID(_stable_uuid('channel', team, channel)).hex}@thread.tacv2"
        )
        return cls(team_id=team_id, team_name=team, channel_id=channel_id, channel_name=channel)

    def thread_id(self, root_message_id: str) -> str:
        """Return the conversation id of the thread started by root_message_id."""
        return f"{self.channel_id};messageid={root_message_id}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _client_info() -> JsonDict:
    return {
        "type": "clientInfo",
        "locale": "en-US",
        "country": "US",
        "platform": "Web",
        "timezone": "Europe/London",
    }


def _mention() -> JsonDict:
    return {
        "type": "mention",
        "text": f"<at>{BOT_NAME}</at>",
        "mentioned": {"id": BOT_ID, "name": BOT_NAME},
    }


def _envelope(
    kind: str,
    *,
    activity_id: str,
    sender: JsonDict,
    service_url: str,
    conversation_id: str,
    conversation_type: ConversationType,
    channel: TeamsChannel | None,
) -> JsonDict:
    """Build the fields every Teams activity carries, in Teams' camelCase JSON."""
    conversation: JsonDict = {
        "conversationType": conversation_type,
        "tenantId": TENANT_ID,
        "id": conversation_id,
    }
    if conversation_type != "personal":
        conversation["isGroup"] = True
    channel_data: JsonDict = {"tenant": {"id": TENANT_ID}}
    if channel is not None:
        channel_data |= {
            "teamsChannelId": channel.channel_id,
            "teamsTeamId": channel.team_id,
            "channel": {"id": channel.channel_id, "name": channel.channel_name},
            "team": {"id": channel.team_id, "name": channel.team_name},
        }
    return {
        "type": kind,
        "id": activity_id,
        "timestamp": _now(),
        "localTimestamp": _now(),
        "serviceUrl": service_url,
        "channelId": "msteams",
        "from": sender,
        "recipient": {"id": BOT_ID, "name": BOT_NAME},
        "conversation": conversation,
        "channelData": channel_data,
        "locale": "en-US",
        "localTimezone": "Europe/London",
    }


def _conversation_type(channel: TeamsChannel | None, group_chat: bool) -> ConversationType:
    if channel is not None:
        return "channel"
    return "groupChat" if group_chat else "personal"


def message(
    text: str,
    *,
    user: TeamsUser,
    service_url: str,
    conversation_id: str | None = None,
    channel: TeamsChannel | None = None,
    group_chat: bool = False,
    mention_bot: bool = False,
) -> JsonDict:
    """Build a message activity; a channel post starts a thread unless conversation_id is given."""
    activity_id = next_message_id()
    kind = _conversation_type(channel, group_chat)
    if conversation_id is None:
        if channel is not None:
            conversation_id = channel.thread_id(activity_id)
        elif group_chat:
            conversation_id = f"19:{uuid.UUID(_stable_uuid('chat', user.teams_id)).hex}@thread.v2"
        else:
            conversation_id = user.personal_conversation_id
    activity = _envelope(
        "message",
        activity_id=activity_id,
        sender=user.account(),
        service_url=service_url,
        conversation_id=conversation_id,
        conversation_type=kind,
        channel=channel,
    )
    entities = [_client_info()]
    if mention_bot:
        text = f"<at>{BOT_NAME}</at> {text}"
        entities.insert(0, _mention())
        # Teams also sends the rendered HTML of a message with a mention as an attachment.
        html = text.replace(
            f"<at>{BOT_NAME}</at>",
            f'<span itemscope="" itemtype="http://schema.skype.com/Mention" itemid="0">'
            f"{BOT_NAME}</span>",
        )
        activity["attachments"] = [{"contentType": "text/html", "content": f"<p>{html}</p>"}]
    activity |= {"text": text, "textFormat": "plain", "entities": entities}
    return activity


def card_action(
    verb: str,
    data: Mapping[str, Any],
    *,
    user: TeamsUser,
    service_url: str,
    conversation_id: str,
    reply_to_id: str | None = None,
    channel: TeamsChannel | None = None,
    group_chat: bool = False,
) -> JsonDict:
    """Build the "adaptiveCard/action" invoke Teams posts when a user presses an Action.Execute."""
    activity = _envelope(
        "invoke",
        activity_id=f"f:{uuid.uuid4()}",
        sender=user.account(),
        service_url=service_url,
        conversation_id=conversation_id,
        conversation_type=_conversation_type(channel, group_chat),
        channel=channel,
    )
    activity["channelData"]["source"] = {"name": "message"}
    if reply_to_id is not None:
        activity["replyToId"] = reply_to_id
        activity["channelData"]["legacy"] = {"replyToId": reply_to_id}
    activity |= {
        "name": "adaptiveCard/action",
        "entities": [_client_info()],
        "value": {
            "action": {"type": "Action.Execute", "verb": verb, "data": dict(data)},
            "trigger": "manual",
        },
    }
    return activity


def conversation_update(
    *,
    members_added: Sequence[TeamsUser | str],
    service_url: str,
    conversation_id: str,
    channel: TeamsChannel | None = None,
    user: TeamsUser | None = None,
    group_chat: bool = False,
) -> JsonDict:
    """Build a conversationUpdate adding members; pass BOT_ID (a str id) to add the bot itself."""
    sender = (user or TeamsUser.named("admin")).account()
    del sender["name"]  # Teams sends only the ids of whoever changed the roster
    activity = _envelope(
        "conversationUpdate",
        activity_id=f"f:{uuid.uuid4()}",
        sender=sender,
        service_url=service_url,
        conversation_id=conversation_id,
        conversation_type=_conversation_type(channel, group_chat),
        channel=channel,
    )
    activity["membersAdded"] = [
        {"id": m} if isinstance(m, str) else {"id": m.teams_id, "aadObjectId": m.aad_object_id}
        for m in members_added
    ]
    if channel is not None:
        activity["channelData"]["eventType"] = "teamMemberAdded"
        activity["channelData"]["team"]["aadGroupId"] = _stable_uuid("group", channel.team_id)
    return activity


def installation_update(
    *,
    action: Literal["add", "remove", "add-upgrade", "remove-upgrade"] = "add",
    user: TeamsUser,
    service_url: str,
    conversation_id: str,
    channel: TeamsChannel | None = None,
    group_chat: bool = False,
) -> JsonDict:
    """Build the installationUpdate Teams posts when the app is installed or removed."""
    activity = _envelope(
        "installationUpdate",
        activity_id=f"f:{uuid.uuid4()}",
        sender={"id": user.teams_id, "aadObjectId": user.aad_object_id},
        service_url=service_url,
        conversation_id=conversation_id,
        conversation_type=_conversation_type(channel, group_chat),
        channel=channel,
    )
    if channel is not None:
        activity["channelData"]["settings"] = {"selectedChannel": {"id": channel.channel_id}}
    activity |= {"action": action, "entities": [_client_info()]}
    return activity


def in_tenant(
    activity: Mapping[str, Any], *, conversation: str | None, channel_data: str | None
) -> JsonDict:
    """Return a copy of an activity naming these tenants; None leaves that field out."""
    changed = copy.deepcopy(dict(activity))
    changed["conversation"].pop("tenantId", None)
    changed["channelData"].pop("tenant", None)
    if conversation is not None:
        changed["conversation"]["tenantId"] = conversation
    if channel_data is not None:
        changed["channelData"]["tenant"] = {"id": channel_data}
    return changed
