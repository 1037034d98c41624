"""Keeping an identity's restriction from cancelling the grants approved after it.

When a grant starts, ends, or a restriction is placed under live grants, the active
restriction is rewritten: its deny split around what the live grants approved, each opened
part scoped to its grant's resources and ending by itself at the grant's expiry (see
`bot.domain.restriction_carving`). Nothing is written when no live grant touches what the
restriction denies, so a grant on a restricted identity costs no extra cloud call unless it
has to pass the restriction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.access.controls import Controls, current_controls
from bot.core.context import Context, identity_ref
from bot.domain.restriction_carving import carve, opened
from bot.store.tables import Grant, Identity
from cloud.base import CloudError, Exemption

log = logging.getLogger("leash.restriction")

CARVED_PROVIDERS = ("aws",)


def grant_exemptions(grants: Sequence[Grant]) -> tuple[Exemption, ...]:
    """One candidate exemption per approved action of each grant."""
    return tuple(
        Exemption(action, grant.expires_at, grant.id, tuple(grant.resources) or ("*",))
        for grant in grants
        for action in grant.actions
    )


class RestrictionExemptions:
    """Rewrites an active restriction so the identity's live grants pass through it."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def refresh(
        self,
        identity: Identity,
        *,
        extra: Sequence[Grant] = (),
        without: str | None = None,
        always: bool = False,
        controls: Controls | None = None,
    ) -> bool:
        """Rewrite the restriction for the identity's open grants; False when none applies.

        `controls`, when the caller has just read them, saves reading them again.
        Only when the grant starting (`extra`) or ending (`without`) touches what the
        restriction denies, or with `always` (a restriction just placed) when any open grant
        does.
        Raises CloudError when the write fails, so a grant that needs to pass the restriction
        fails closed instead of being written behind its deny.
        """
        if identity.provider not in CARVED_PROVIDERS:
            return False
        controls = controls or await current_controls(self._ctx, identity)
        row = controls.restriction
        if row is None or row.snapshot is None:
            return False
        denied = tuple(row.actions)
        grants = controls.open_grants(extra=extra, without=without)
        touched = list(grants if always else extra)
        if without is not None:
            async with self._ctx.sessions() as session:
                ended = await session.get(Grant, without)
            touched += [ended] if ended is not None else []
        if not any(opened(denied, g.actions) for g in touched):
            return False
        try:
            carving = carve(denied, grant_exemptions(grants))
        except ValueError as error:
            raise CloudError(f"cannot let the grant through the restriction: {error}") from None
        provider = self._ctx.provider_for(identity)
        await provider.let_through_restriction(
            identity_ref(identity), row.snapshot, carving.deny, carving.exemptions
        )
        return True

    async def close(self, identity: Identity, grant_id: str) -> None:
        """Deny again in full what an ended grant opened (it also lapses by itself)."""
        try:
            await self.refresh(identity, without=grant_id)
        except CloudError:
            log.exception(
                "could not close the restriction's exemption of grant %s on %s; it lapses at "
                "the grant's expiry",
                grant_id,
                identity.name,
            )
