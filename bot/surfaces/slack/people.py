"""Who a Slack user is to Leash (id and e-mail), and how to reach a recipient name on Slack."""

from __future__ import annotations

import logging
import re
import time

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger("leash.slack")

USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,30}")
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")
_MAILTO = re.compile(r"<mailto:([^|>]+)(?:\|[^>]*)?>")
_LINK = re.compile(r"<(https?://[^|>]+)(?:\|[^>]*)?>")
CACHE_SECONDS = 600.0


def plain_text(text: str) -> str:
    """Turn Slack's escaped slash-command text back into what the user typed."""
    text = _MENTION.sub(r"\1", text)
    text = _CHANNEL.sub(r"\1", text)
    text = _MAILTO.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


class Directory:
    """Caches e-mail <-> user id lookups (both ways) for a few minutes."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._emails: dict[str, tuple[float, str | None]] = {}
        self._ids: dict[str, tuple[float, str | None]] = {}

    @staticmethod
    def _fresh(entry: tuple[float, str | None] | None) -> bool:
        return entry is not None and time.monotonic() - entry[0] < CACHE_SECONDS

    async def email_of(self, user_id: str) -> str | None:
        """The user's e-mail (their alias for owners registered by e-mail), or None."""
        cached = self._emails.get(user_id)
        if self._fresh(cached):
            assert cached is not None
            return cached[1]
        email: str | None = None
        try:
            response = await self._client.users_info(user=user_id)
            profile = (response.get("user") or {}).get("profile") or {}
            email = profile.get("email") or None
        except SlackApiError as error:
            log.info("users.info %s failed: %s", user_id, error.response.get("error"))
        self._emails[user_id] = (time.monotonic(), email)
        return email

    async def channel_for(self, recipient: str) -> str | None:
        """Where to post for a recipient name: a user id, a channel, or an e-mail to look up."""
        name = recipient.strip()
        if USER_ID.fullmatch(name) or CHANNEL_ID.fullmatch(name) or name.startswith("#"):
            return name
        if "@" not in name:
            return None  # not a Slack user (e.g. a console user in the sandbox)
        cached = self._ids.get(name.lower())
        if self._fresh(cached):
            assert cached is not None
            return cached[1]
        user_id: str | None = None
        try:
            response = await self._client.users_lookupByEmail(email=name)
            user_id = (response.get("user") or {}).get("id")
        except SlackApiError as error:
            log.warning("no Slack user for %s: %s", name, error.response.get("error"))
        self._ids[name.lower()] = (time.monotonic(), user_id)
        return user_id
