"""How a grant on an identity's cloud will end, as the approval card says it."""

from __future__ import annotations

from bot.core.context import Context, identity_ref
from bot.store.tables import Identity
from cloud.base import CloudError

# How each cloud ends a grant, as the approval card says it.
EXPIRY_MECHANISMS = {
    "aws-inline-policy-with-DateLessThan": "AWS ends it by itself (a policy condition on the time)",
    "gcp-iam-condition-request-time": "Google Cloud ends it by itself (an IAM condition)",
    "azure-pim-schedule": "Azure ends it by itself (a PIM schedule with an expiration)",
    "azure-role-assignment-leash-revoked": (
        "Leash ends it (a plain role assignment: no PIM licence here), by its scheduler and sweep"
    ),
}


async def expiry_reason(ctx: Context, identity: Identity) -> str:
    """Say who ends the grant on this identity's cloud (the approval card shows it)."""
    try:
        mechanism = await ctx.provider_for(identity).grant_mechanism(identity_ref(identity))
    except CloudError as error:
        return f"expiry: how the cloud would end it is unknown ({error})"
    return f"expiry: {EXPIRY_MECHANISMS.get(mechanism, mechanism)}"
