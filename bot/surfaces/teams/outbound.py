"""Teams messages Leash sends on its own: cards to stored conversations, and their updates."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity, ActivityTypes, Attachment, ConversationReference

from bot.core import notices
from bot.core.notices import current_card
from bot.domain.messages import Notice, NoticeKind, Reply
from bot.lifecycle.service import Lifecycle
from bot.store.tables import ChatContact
from bot.surfaces.teams import render as cards
from bot.surfaces.teams.connector import ConnectorRetry
from bot.surfaces.teams.people import PLATFORM, load_reference

log = logging.getLogger("leash.teams")

CARD_KINDS = (NoticeKind.APPROVAL_NEEDED, NoticeKind.REMINDER, NoticeKind.ESCALATED)
# Notices after which every copy of the request's card is redrawn as the request now stands.
REDRAWING_KINDS = (NoticeKind.DECIDED, NoticeKind.REQUEST_EXPIRED, NoticeKind.CARD_UPDATED)
MORE_HINTS = {NoticeKind.SCAN_FINDINGS: "unused", NoticeKind.UNOWNED: "identities"}


def message(reply: Reply, card: cards.Card) -> Activity:
    """A message activity carrying one Adaptive Card, with plain text for notifications."""
    return Activity(
        type=ActivityTypes.message,
        summary=cards.summary(reply),
        text=None,
        attachments=[Attachment(content_type=cards.CONTENT_TYPE, content=card)],
    )


def image_message(reply: Reply) -> list[Activity]:
    """Each attached file (the digest's chart) as an inline image message of its own."""
    return [
        Activity(
            type=ActivityTypes.message,
            text=attachment.title,
            attachments=[
                Attachment(
                    content_type=attachment.mime,
                    content_url=f"data:{attachment.mime};base64,"
                    + base64.b64encode(attachment.content).decode("ascii"),
                    name=attachment.filename,
                )
            ],
        )
        for attachment in reply.attachments
    ]


class Outbound:
    """Posts notices to stored conversations; remembers and closes approval cards."""

    def __init__(
        self,
        *,
        lifecycle: Lifecycle,
        adapter: CloudAdapter,
        app_id: str,
        retry: ConnectorRetry,
        report_unreachable: bool,
    ) -> None:
        self._lifecycle = lifecycle
        self._adapter = adapter
        self._app_id = app_id
        self._retry = retry
        self._report_unreachable = report_unreachable

    async def deliver(self, notice: Notice) -> None:
        if notice.platform not in (None, PLATFORM):
            return  # a Slack team's digest
        try:
            if notice.kind in REDRAWING_KINDS and notice.request_id:
                await self._redraw_cards(notice.request_id)
            if notice.kind == NoticeKind.CARD_UPDATED:
                return  # redrawn in place: nothing new to post
            missed = await self._send(notice, notice.recipients)
            if missed:
                await self._unreachable(notice, missed)
        except Exception:
            log.exception("could not deliver %s notice on Teams", notice.kind)

    async def _send(self, notice: Notice, recipients: tuple[str, ...]) -> list[str]:
        """Post to each recipient Leash has a conversation with; return those it has none for."""
        found = await self._lifecycle.conversations.find(PLATFORM, recipients)
        tied = notice.kind in CARD_KINDS and notice.request_id is not None
        card = cards.reply_card(
            notice.reply,
            request_id=notice.request_id if tied else None,
            # Teams redraws the card for these viewers by itself when they open it.
            refresh_for=_viewers(found.values()) if tied else (),
            more_hint=MORE_HINTS.get(notice.kind),
        )
        missed: list[str] = []
        posted: set[str] = set()  # one person named twice (id and e-mail) gets one message
        for recipient, contact in found.items():
            if contact is not None and contact.address in posted:
                continue
            sent = None
            if contact is not None:
                sent = await self.post(load_reference(contact.address), notice.reply, card)
            if contact is None or sent is None:
                missed.append(recipient)
                continue
            posted.add(contact.address)
            if tied and await self._lifecycle.conversations.card_posted(
                PLATFORM,
                kind=notice.kind,
                channel=contact.key,
                ref=sent,
                request_id=notice.request_id,
            ):
                await self._close_late_card(contact.address, sent, notice.request_id)
        return missed

    async def _close_late_card(self, address: str, card_id: str, request_id: str | None) -> None:
        """A card posted while its request was being decided: close it as the others were."""
        closed = await closed_card(self._lifecycle, request_id) if request_id else None
        if closed is not None:
            await self.update(load_reference(address), card_id, closed)

    async def _unreachable(self, notice: Notice, missed: list[str]) -> None:
        """Never lose a message silently: approvals go to the admins, the rest is reported."""
        admins = tuple(sorted(self._lifecycle.rules.admins))
        log.warning(
            "no Teams conversation with %s for a %s notice (the app is not installed for them)",
            ", ".join(missed),
            notice.kind,
        )
        if not self._report_unreachable or set(missed) <= set(admins):
            return
        if notice.kind in CARD_KINDS:
            reached = len(missed) < len(notice.recipients)
            if not reached:
                await self._send(notice, admins)
            return
        await self._send(notices.undelivered(missed, notice, admins), admins)

    async def post(
        self, reference: ConversationReference, reply: Reply, card: cards.Card
    ) -> str | None:
        """Post a card (then its attached images) to a conversation; return its activity id."""
        sent: list[str] = []

        async def send(context: TurnContext) -> None:
            response = await self._send_one(context, message(reply, card))
            sent.append(str(getattr(response, "id", "") or ""))
            for image in image_message(reply):
                try:
                    await self._send_one(context, image)
                except Exception as error:
                    log.warning("the chart of %r was not posted: %s", reply.text[:60], error)

        try:
            await self._adapter.continue_conversation(reference, send, bot_app_id=self._app_id)
        except Exception as error:
            log.warning("posting to %s failed: %s", reference.conversation.id, error)
            return None
        return sent[0] if sent else None

    async def _send_one(self, context: TurnContext, activity: Activity) -> Any:
        """Post a new message (not a reply to the SDK's made-up continuation activity)."""
        reference = TurnContext.get_conversation_reference(context.activity)
        TurnContext.apply_conversation_reference(activity, reference)
        activity.reply_to_id = None
        responses = await self._retry(lambda: context.adapter.send_activities(context, [activity]))
        return responses[0] if responses else None

    async def update(
        self, reference: ConversationReference, activity_id: str, card: cards.Card
    ) -> None:
        """Replace a posted card in place."""

        async def replace(context: TurnContext) -> None:
            activity = message(Reply(text="Leash"), card)
            activity.id = activity_id
            activity.conversation = reference.conversation
            await self._retry(lambda: context.update_activity(activity))

        try:
            await self._adapter.continue_conversation(reference, replace, bot_app_id=self._app_id)
        except Exception as error:
            log.warning("updating card %s failed: %s", activity_id, error)

    async def _redraw_cards(self, request_id: str) -> None:
        """Replace every copy of a request's card with the request as it stands: the approvals
        so far while it waits; once decided the outcome, who decided, no buttons left."""
        conversations = self._lifecycle.conversations
        posted = await conversations.cards_of(PLATFORM, request_id)
        closed = await closed_card(self._lifecycle, request_id)
        found = await conversations.find(PLATFORM, [card.channel for card in posted])
        addresses = {name: contact.address for name, contact in found.items() if contact}
        if closed is None:
            return
        for card in posted:
            if card.channel in addresses:
                await self.update(load_reference(addresses[card.channel]), card.ref, closed)


def _viewers(found: Iterable[ChatContact | None]) -> tuple[str, ...]:
    """The Teams user ids of the people among `found` (channels have no single viewer)."""
    ids: list[str] = []
    for contact in found:
        if contact is None:
            continue
        reference = load_reference(contact.address)
        kind = getattr(reference.conversation, "conversation_type", None)
        if reference.user is not None and reference.user.id and kind == "personal":
            ids.append(reference.user.id)
    return tuple(dict.fromkeys(ids))


async def closed_card(lifecycle: Lifecycle, request_id: str) -> cards.Card | None:
    """The card of a request as it stands now (outcome on top once decided), or None."""
    found = await lifecycle.queries.request_with_identity(request_id)
    if found is None:
        return None
    request, identity = found
    approved_by = await lifecycle.queries.approvers_of(request_id)
    card, outcome = current_card(request, identity, approved_by)
    if outcome is None:
        return cards.reply_card(card, request_id=request.id)
    return cards.outcome_card(outcome, card)
