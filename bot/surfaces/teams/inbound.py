"""The Teams bot: typed commands, card actions (Action.Execute), installs and first contact."""

from __future__ import annotations

import logging
from typing import Any

from botbuilder.core import ActivityHandler, InvokeResponse, TurnContext
from botbuilder.schema import Activity, ChannelAccount

from bot.commands import render
from bot.commands.forms import request_from_form, verb_of
from bot.commands.handler import CommandHandler
from bot.domain.actors import Actor
from bot.domain.errors import LeashError
from bot.domain.messages import Reply
from bot.lifecycle.conversations import Place
from bot.lifecycle.service import Lifecycle
from bot.surfaces.teams import render as cards
from bot.surfaces.teams.card_work import CardWork
from bot.surfaces.teams.connector import ConnectorRetry
from bot.surfaces.teams.forms import FORM, request_form, submitted
from bot.surfaces.teams.outbound import closed_card, image_message, message
from bot.surfaces.teams.people import PLATFORM, People, command_text, conversations_of

log = logging.getLogger("leash.teams")

CARD_ACTION = "adaptiveCard/action"
MESSAGE_RESPONSE = "application/vnd.microsoft.activity.message"
WELCOME = Reply(
    text="Hi, I'm Leash: I put AI agents' cloud identities on a leash.",
    lines=(
        "Type `request` for a form to ask for temporary access, or `help` for every command.",
        "Owners get approval cards here; approve or deny with a click.",
    ),
)
OUTDATED = "That button is not one Leash knows; the card may be outdated."
NOT_YOURS = "You cannot see this request."


def card_response(card: cards.Card) -> dict[str, Any]:
    return {"statusCode": 200, "type": cards.CONTENT_TYPE, "value": card}


def text_response(text: str) -> dict[str, Any]:
    return {"statusCode": 200, "type": MESSAGE_RESPONSE, "value": text}


def error_response(status: int, code: str, text: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "type": "application/vnd.microsoft.error",
        "value": {"code": code, "message": text},
    }


class TeamsBot(ActivityHandler):  # type: ignore[misc]  # botbuilder ships no type hints
    """Turns Teams activities into Leash commands; holds no state between turns."""

    def __init__(
        self,
        *,
        lifecycle: Lifecycle,
        handler: CommandHandler,
        people: People,
        retry: ConnectorRetry,
        work: CardWork,
    ) -> None:
        super().__init__()
        self._lifecycle = lifecycle
        self._handler = handler
        self._people = people
        self._retry = retry
        self._work = work

    # Conversations Leash may post to later

    async def _remember(self, context: TurnContext) -> None:
        """Store how to reach this user or channel again (keyed by id, Entra id, e-mail)."""
        email = await self._people.email_of(context)
        try:
            await self._lifecycle.conversations.remember(
                PLATFORM,
                [
                    Place(keys=place.keys, address=place.reference, label=place.label)
                    for place in conversations_of(context.activity, email)
                ],
            )
        except Exception:
            # e.g. another replica stored the same user at the same moment: theirs stands.
            log.warning("could not store the Teams conversation", exc_info=True)

    async def on_conversation_update_activity(self, turn_context: TurnContext) -> None:
        added: list[ChannelAccount] = turn_context.activity.members_added or []
        bot_id = turn_context.activity.recipient.id if turn_context.activity.recipient else None
        if any(member.id == bot_id for member in added):
            await self._installed(turn_context)

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        await self._installed(turn_context)

    async def _installed(self, context: TurnContext) -> None:
        await self._remember(context)
        await self._say(context, WELCOME, cards.reply_card(WELCOME))

    # Typed commands

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        await self._remember(turn_context)
        text = command_text(turn_context)
        if text.lower() == "request":
            form = await self._request_form()
            await self._say(turn_context, Reply(text="Ask for temporary access"), form)
            return
        actor = await self._people.actor(turn_context)
        reply = await self._handler.handle_text(text or "help", actor=actor)
        await self._say(turn_context, reply, cards.reply_card(reply))

    async def _say(self, context: TurnContext, reply: Reply, card: cards.Card) -> None:
        await self._retry(lambda: context.send_activity(message(reply, card)))
        for image in image_message(reply):
            await self._send(context, image)

    async def _send(self, context: TurnContext, activity: Activity) -> None:
        await self._retry(lambda: context.send_activity(activity))

    async def _request_form(
        self, values: dict[str, str] | None = None, error: str | None = None
    ) -> cards.Card:
        rows = await self._lifecycle.queries.search(None, limit=500)
        choices = [
            (f"{identity.name} ({identity.account})", identity.native_id)
            for identity, _ in sorted(rows, key=lambda row: row[0].classification != "ai_agent")
            if identity.present
        ]
        return request_form(self._lifecycle.rules, choices, values=values, error=error)

    # Card actions

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        if turn_context.activity.name != CARD_ACTION:
            return await super().on_invoke_activity(turn_context)
        return InvokeResponse(status=200, body=await self._on_card_action(turn_context))

    async def _on_card_action(self, context: TurnContext) -> dict[str, Any]:
        value = context.activity.value if isinstance(context.activity.value, dict) else {}
        action = value.get("action")
        if not isinstance(action, dict) or action.get("type") != "Action.Execute":
            return error_response(400, "BadRequest", "Leash cards only use Action.Execute.")
        verb = str(action.get("verb") or "")
        raw = action.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if verb == cards.REFRESH_VERB:
            viewer = await self._people.actor(context)
            return await self._refresh(str(data.get("request", "")), viewer=viewer)
        await self._remember(context)
        actor = await self._people.actor(context)
        if verb == FORM and data.get("form") == FORM:
            return await self._submit_request(submitted(data), actor=actor)
        command = cards.command_from_action(data)
        if not command or verb_of(command) != verb:
            return text_response(OUTDATED)
        # Answered before the cloud is done (card_work.py); the card is updated when it is.
        card = await self._work.run(
            command,
            actor=actor,
            request_id=str(data.get("request") or ""),
            activity=context.activity,
        )
        return card_response(card)

    async def _refresh(self, request_id: str, *, viewer: Actor) -> dict[str, Any]:
        """Another viewer opened a request card: show it as it stands now, if they may see it."""
        if not request_id or not await self._lifecycle.visibility.may_see(
            request_id[:16], actor=viewer
        ):
            return text_response(NOT_YOURS)
        card = await closed_card(self._lifecycle, request_id[:16]) if request_id else None
        if card is None:
            return text_response(OUTDATED)
        return card_response(card)

    async def _submit_request(self, values: dict[str, str], *, actor: Actor) -> dict[str, Any]:
        try:
            request = await self._lifecycle.requests.submit(request_from_form(values), actor=actor)
        except LeashError as error:
            return card_response(await self._request_form(values, str(error)))
        return card_response(cards.reply_card(render.submitted(request)))
