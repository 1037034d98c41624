"""Who may see a request's card: its requester, its approvers, the identity's owners, admins."""

from __future__ import annotations

from bot.core.authorizing import check, request_facts
from bot.core.context import Context
from bot.core.persons import expanded, resolve
from bot.domain.actors import Actor
from bot.domain.authority import Verb
from bot.domain.errors import LeashError
from bot.store.tables import AccessRequest


class RequestVisibility:
    """Answers 'may this person see that request' for surfaces that redraw cards."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def may_see(self, request_id: str, *, actor: Actor) -> bool:
        """Say whether the actor may see the request; a refusal is audited, nothing else."""
        ctx = self._ctx
        actor = await resolve(ctx, actor)
        try:
            async with ctx.sessions() as session:
                request = await session.get(AccessRequest, request_id.strip()[:16])
                if request is None:
                    return False
                facts = await request_facts(request, session=session, rules=ctx.rules)
                check(Verb.SEE_REQUEST, await expanded(actor, session=session), facts)
        except LeashError as error:
            await ctx.refuse(
                error, actor=actor, event_type="request.view_refused", request_id=request_id[:16]
            )
            return False
        return True
