"""Taking down what a grant wrote that must not stand: its artefact and its exemptions."""

from __future__ import annotations

import logging

from bot.core.context import Context, identity_ref
from bot.posture.guardrails import GuardrailFlow
from bot.posture.restriction_exemptions import RestrictionExemptions
from bot.store.tables import Identity
from cloud.base import CloudError

log = logging.getLogger("leash.grants")


class GrantCleanup:
    """The guardrail and restriction exemptions a grant opens, and removing a grant's write."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.guardrails = GuardrailFlow(ctx)
        self.restrictions = RestrictionExemptions(ctx)

    async def close_exemption(self, identity: Identity, grant_id: str) -> None:
        """Restore the full guardrail and restriction denies once a grant is gone (both also
        lapse by themselves)."""
        await self.restrictions.close(identity, grant_id)
        try:
            await self.guardrails.refresh(identity, without=grant_id)
        except CloudError:
            log.exception(
                "could not close the guardrail exemption of grant %s on %s; it lapses at the "
                "grant's expiry and the nightly pass rewrites it",
                grant_id,
                identity.name,
            )

    async def remove_from_cloud(self, identity: Identity, grant_id: str, *, why: str) -> bool:
        """Delete a write that must not stand and close its exemptions; False if it stays."""
        try:
            await self._ctx.provider_for(identity).revoke(identity_ref(identity), grant_id)
            removed = True
        except CloudError:
            log.exception(
                "could not remove grant %s from %s after %s; reconcile removes it",
                grant_id,
                identity.name,
                why,
            )
            removed = False
        await self.close_exemption(identity, grant_id)
        return removed
