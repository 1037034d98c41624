"""How a grant on an identity's cloud will end, as the approval card says it."""

from __future__ import annotations

from bot.core.context import Context, identity_ref
from bot.core.notices import EXPIRY_MECHANISMS
from bot.store.tables import Identity
from cloud.base import CloudError


async def expiry_reason(ctx: Context, identity: Identity) -> str:
    """Say who ends the grant on this identity's cloud (the approval card shows it)."""
    try:
        mechanism = await ctx.provider_for(identity).grant_mechanism(identity_ref(identity))
    except CloudError as error:
        return f"expiry: how the cloud would end it is unknown ({error})"
    return f"expiry: {EXPIRY_MECHANISMS.get(mechanism, mechanism)}"
