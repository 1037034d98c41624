"""Slack messages Leash sends: DMs, cards remembered per request, and their updates."""

from __future__ import annotations

import logging

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.notices import current_card, request_summary
from bot.domain.messages import Attachment, Notice, NoticeKind, Reply
from bot.lifecycle.service import Lifecycle
from bot.surfaces.slack.pacing import ChannelPacer
from bot.surfaces.slack.people import Directory
from bot.surfaces.slack.render import Block, fallback_text, outcome_blocks, reply_blocks

log = logging.getLogger("leash.slack")

PLATFORM = "slack"
CARD_KINDS = (NoticeKind.APPROVAL_NEEDED, NoticeKind.REMINDER, NoticeKind.ESCALATED)
CLOSING_KINDS = (NoticeKind.DECIDED, NoticeKind.REQUEST_EXPIRED)


class Outbound:
    """Posts notices (paced per channel), remembers cards, and closes them when decided."""

    def __init__(
        self,
        *,
        lifecycle: Lifecycle,
        client: AsyncWebClient,
        directory: Directory,
        pacer: ChannelPacer,
    ) -> None:
        self._lifecycle = lifecycle
        self._client = client
        self._directory = directory
        self._pacer = pacer

    async def deliver(self, notice: Notice) -> None:
        if notice.platform not in (None, PLATFORM):
            return  # meant for another platform's channel (e.g. a Teams team's digest)
        try:
            if notice.kind in CLOSING_KINDS and notice.request_id:
                await self._close_cards(notice.request_id, notice.reply)
            if notice.kind == NoticeKind.CARD_UPDATED:
                if notice.request_id:
                    await self._redraw_waiting(notice.request_id)
                return  # redrawn in place: nothing new to post
            delivered = await self._send(notice, notice.recipients)
            if not delivered and notice.kind in CARD_KINDS:
                # Nobody it was meant for is on Slack: an approval must not be lost silently.
                admins = tuple(sorted(self._lifecycle.rules.admins))
                log.warning(
                    "no recipient of %s (%s) is reachable on Slack; asking the admins",
                    notice.kind,
                    ", ".join(notice.recipients),
                )
                await self._send(notice, admins)
        except Exception:
            log.exception("could not deliver %s notice on Slack", notice.kind)

    async def _send(self, notice: Notice, recipients: tuple[str, ...]) -> int:
        """Post a notice to each recipient reachable on Slack; remember cards; count posts."""
        delivered = 0
        for recipient in recipients:
            channel = await self._directory.channel_for(recipient)
            if channel is None:
                log.debug("%s is not reachable on Slack", recipient)
                continue
            posted = await self.post(channel, notice.reply)
            if posted is None:
                continue
            delivered += 1
            if (
                notice.kind in CARD_KINDS
                and notice.request_id
                and await self._lifecycle.conversations.card_posted(
                    PLATFORM,
                    kind=notice.kind,
                    channel=posted[0],
                    ref=posted[1],
                    request_id=notice.request_id,
                )
            ):
                # Decided while this card was on its way: the copies closed then missed it.
                await self._close_one(posted[0], posted[1], request_id=notice.request_id)
        return delivered

    async def post(self, channel: str, reply: Reply) -> tuple[str, str] | None:
        """Post a reply, then its attachments in its thread; return (channel id, ts) or None."""
        await self._pacer.wait(channel)
        try:
            response = await self._client.chat_postMessage(
                channel=channel, text=fallback_text(reply), blocks=reply_blocks(reply), mrkdwn=False
            )
        except SlackApiError as error:
            log.warning("chat.postMessage to %s failed: %s", channel, error.response.get("error"))
            return None
        posted = str(response["channel"]), str(response["ts"])
        for attachment in reply.attachments:
            # A shared file is a message too: it keeps the channel's pace.
            await self._pacer.wait(channel)
            await self._upload(attachment, channel=posted[0], thread_ts=posted[1])
        return posted

    async def _upload(self, attachment: Attachment, *, channel: str, thread_ts: str) -> None:
        """Share a file in a message's thread; the message stands even if this fails."""
        try:
            await self._client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                file=attachment.content,
                filename=attachment.filename,
                title=attachment.title,
            )
        except SlackApiError as error:
            log.warning(
                "upload of %s to %s failed: %s",
                attachment.filename,
                channel,
                error.response.get("error"),
            )
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as error:
            # e.g. the upload URL answered with an HTTP error, or could not be reached
            log.warning(
                "upload of %s to %s failed: %s: %s",
                attachment.filename,
                channel,
                type(error).__name__,
                error,
            )

    async def _close_cards(self, request_id: str, outcome: Reply) -> None:
        """Update every copy of a request's card: the outcome, who decided, no buttons left."""
        posted = await self._lifecycle.conversations.cards_of(PLATFORM, request_id)
        card = await self._card_reply(request_id)
        for message in posted:
            blocks = outcome_blocks(outcome, card)
            await self._update(message.channel, message.ref, outcome, blocks)

    async def _redraw_waiting(self, request_id: str) -> None:
        """Redraw every copy of a waiting request's card with the approvals it has so far."""
        found = await self._lifecycle.queries.request_with_identity(request_id)
        if found is None:
            return
        approved_by = await self._lifecycle.queries.approvers_of(request_id)
        card, outcome = current_card(*found, approved_by)
        if outcome is not None:
            return  # decided meanwhile: its own notice closes the cards
        for message in await self._lifecycle.conversations.cards_of(PLATFORM, request_id):
            await self._update(message.channel, message.ref, card, reply_blocks(card))

    async def _close_one(self, channel: str, ts: str, *, request_id: str) -> None:
        """Close one card with the request's outcome as it stands now."""
        found = await self._lifecycle.queries.request_with_identity(request_id)
        if found is None:
            return
        card, outcome = current_card(*found)
        if outcome is not None:
            await self._update(channel, ts, outcome, outcome_blocks(outcome, card))

    async def _update(self, channel: str, ts: str, said: Reply, blocks: list[Block]) -> None:
        """Replace a posted message (`said` gives its notification text)."""
        await self._pacer.wait(channel)
        try:
            await self._client.chat_update(
                channel=channel, ts=ts, text=fallback_text(said), blocks=blocks, mrkdwn=False
            )
        except SlackApiError as error:
            log.warning("chat.update of %s failed: %s", ts, error.response.get("error"))

    async def _card_reply(self, request_id: str) -> Reply:
        found = await self._lifecycle.queries.request_with_identity(request_id)
        return request_summary(request_id, found)
