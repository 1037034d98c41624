"""A button's work: decide at once, answer the invoke, and update the card when the cloud is done.

Teams waits about 5 s for the answer to an `Action.Execute` and gives up at 15 s, while a grant
takes several cloud calls. So the decision (who may, whether the request is still open) is made
before the answer, and the cloud work runs in the background: if it ends within
`answer_within` the invoke answers with the outcome, else with "applying…", and the clicked card
is updated in place with the outcome later.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Coroutine
from typing import Any

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ConversationReference

from bot.access.requests import ApprovalResult
from bot.commands import render
from bot.commands.grammar.access import ApproveCommand, parse
from bot.commands.handler import CommandHandler
from bot.domain.actors import Actor
from bot.domain.errors import LeashError
from bot.domain.messages import Reply
from bot.lifecycle.service import Lifecycle
from bot.store.errors import database_unreachable
from bot.surfaces.teams import render as cards
from bot.surfaces.teams.background import Background
from bot.surfaces.teams.outbound import Outbound, closed_card

log = logging.getLogger("leash.teams")

# Long enough that a quick cloud gives one answer, short enough to stay well inside Teams' 5 s.
ANSWER_WITHIN = 0.3

Work = Coroutine[Any, Any, Reply]


def trouble(error: Exception, *, command: str) -> Reply:
    """An unexpected failure: logged in full with a correlation id, which the user is given."""
    correlation = secrets.token_hex(4)
    if database_unreachable(error):
        log.warning("%r not run, database unreachable [%s]: %s", command[:200], correlation, error)
        return render.unreachable(correlation)
    log.error("%r failed [%s]", command[:200], correlation, exc_info=error)
    return render.went_wrong(correlation)


class CardWork:
    """Runs buttons' commands; the cloud part in the background, tracked in `work`."""

    def __init__(
        self,
        *,
        lifecycle: Lifecycle,
        handler: CommandHandler,
        outbound: Outbound,
        work: Background,
        deliveries: Background,
        answer_within: float = ANSWER_WITHIN,
    ) -> None:
        self._lifecycle = lifecycle
        self._handler = handler
        self._outbound = outbound
        self._work = work
        self._deliveries = deliveries
        self._answer_within = answer_within

    async def run(
        self, command: str, *, actor: Actor, request_id: str, activity: Activity
    ) -> cards.Card:
        """The invoke's answer: the outcome, a refusal, or "applying…" (updated later)."""
        decided = await self._decide(command, actor=actor)
        if isinstance(decided, Reply):
            return await self.card_for(decided, request_id=request_id, actor=actor)
        rest, working = decided
        outcome = self._work.start(rest)
        await asyncio.wait({outcome}, timeout=self._answer_within)
        if outcome.done():
            return await self.card_for(outcome.result(), request_id=request_id, actor=actor)
        self._work.start(
            self._follow_up(
                outcome,
                actor=actor,
                request_id=request_id,
                reference=TurnContext.get_conversation_reference(activity),
                card_id=activity.reply_to_id,
            )
        )
        return await self.card_for(working, request_id=request_id, actor=actor)

    async def _decide(self, command: str, *, actor: Actor) -> Reply | tuple[Work, Reply]:
        """Approvals are recorded here (so a refusal is in the answer); the rest runs whole."""
        try:
            parsed = parse(command)
        except LeashError:
            parsed = None  # the handler words (and audits) the refusal
        if not isinstance(parsed, ApproveCommand):
            return self._handler.handle_text(command, actor=actor), render.still_working(command)
        try:
            actor = await self._lifecycle.resolve(actor)
            decided = await self._lifecycle.requests.approve(
                parsed.request_id, actor=actor, note=parsed.note
            )
        except LeashError as error:
            return render.refused(error)
        except Exception as error:
            return trouble(error, command=command)
        if decided.grant is None:  # another approver is still needed: nothing to apply
            return render.approved(decided)
        return self._carry_out(decided, actor=actor, command=command), render.applying(decided)

    async def _carry_out(self, decided: ApprovalResult, *, actor: Actor, command: str) -> Reply:
        try:
            return render.approved(await self._lifecycle.carry_out(decided, actor=actor))
        except LeashError as error:
            return render.refused(error)
        except Exception as error:
            return trouble(error, command=command)

    async def _follow_up(
        self,
        outcome: asyncio.Task[Reply],
        *,
        actor: Actor,
        request_id: str,
        reference: ConversationReference,
        card_id: str | None,
    ) -> None:
        """Show the outcome on the clicked card (or in a new message if Teams named none)."""
        try:
            reply = await outcome
            # The decision's notices replace every copy of the request's card; they go first,
            # so the outcome is what the clicked card ends with.
            await self._deliveries.settled()
            card = await self.card_for(reply, request_id=request_id, actor=actor)
        except Exception:
            log.exception("could not draw the outcome of a card action")
            return
        if card_id:
            await self._outbound.update(reference, card_id, card)
        else:
            await self._outbound.post(reference, reply, card)

    async def card_for(self, reply: Reply, *, request_id: str, actor: Actor) -> cards.Card:
        """What the click did (or why it did not count), above the card as it now stands."""
        # Only people who may see the request get the card back; anyone else the answer alone.
        if request_id and await self._lifecycle.visibility.may_see(request_id, actor=actor):
            card = await closed_card(self._lifecycle, request_id)
            if card is not None:
                said = cards.text_block(
                    cards.mark(reply), color="Good" if reply.ok else "Attention"
                )
                card["body"].insert(0, said)
                return card
        return cards.reply_card(reply)
