"""What a request needs from the cloud, asked before its database transaction opens.

Drafting a request resolves what is asked (roles into permissions) and says who ends the
grant; both are cloud calls. Made inside the transaction that stores the request, a slow
cloud held the transaction open (past PostgreSQL's idle-in-transaction bound on a loaded
machine, which cut the session off). They are asked first, with a short read of the
identity; the transaction then uses these answers, and asks again only if what it drafts
differs (the identity was renamed in between).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.access.drafting import RequestInput, Resolver, planned_permissions
from bot.access.expiry import expiry_reason
from bot.core.context import Context, identity_ref
from bot.domain.actors import Actor
from bot.domain.errors import LeashError
from bot.domain.states import ActorKind
from bot.inventory import registry
from bot.store.tables import Identity
from cloud.base import CloudError, Resolution


@dataclass(frozen=True, slots=True)
class CloudAnswers:
    """The cloud's answers for one identity and one list of asked permissions."""

    identity_id: str | None = None
    asked: tuple[str, ...] = ()
    resolution: Resolution | None = None
    expiry: str | None = None

    def resolver(self, ctx: Context) -> Resolver:
        """Resolve from these answers when they fit, from the cloud otherwise."""

        async def resolve(identity: Identity, asked: tuple[str, ...]) -> Resolution:
            if self.resolution is not None and (identity.id, asked) == (
                self.identity_id,
                self.asked,
            ):
                return self.resolution
            return await ctx.provider_for(identity).resolve(identity_ref(identity), asked)

        return resolve

    async def expiry_for(self, ctx: Context, identity: Identity) -> str:
        if self.expiry is not None and identity.id == self.identity_id:
            return self.expiry
        return await expiry_reason(ctx, identity)


async def ask_the_cloud_first(ctx: Context, data: RequestInput, actor: Actor) -> CloudAnswers:
    """The answers for `data`, or none when drafting will refuse it anyway (and say why).

    Whatever goes wrong here is left for drafting to find again, in its own order (the
    reason before the identity, the identity before the cloud): no answers, not an error.
    """
    if not " ".join(data.reason.split()):
        return CloudAnswers()
    async with ctx.sessions() as session:  # read only: closed before the cloud is called
        try:
            identity = await registry.resolve(data.identity, session=session)
            asked = planned_permissions(data, ctx.rules, provider=identity.provider)[0]
        except LeashError:
            return CloudAnswers()
    if actor.kind is ActorKind.AGENT and actor.name != identity.id:
        return CloudAnswers()
    try:
        resolution = await ctx.provider_for(identity).resolve(identity_ref(identity), asked)
    except (LeashError, CloudError):
        return CloudAnswers()
    expiry = await expiry_reason(ctx, identity)
    return CloudAnswers(identity.id, asked, resolution, expiry)
