"""Grants that never cancel each other: each grant's persistence denies leave out what another
live grant on the same identity approved.

Every AWS grant carries a `LeashDenyPersistence` statement (credential-minting actions, denied
while it lives unless the grant itself approved them). Left as it was computed at approval, an
approved `iam:PassRole` grant was dead while any other grant lived. The denies are composed from
the identity's live grants instead: when a grant starts, its own denies leave out what the
others approved and the others' leave out what it approves; when one ends, the rest get their
denies back. Google Cloud composes its deny policies in the provider; Azure denies nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.access.controls import Controls, current_controls
from bot.core.context import Context, identity_ref
from bot.core.transitions import set_state
from bot.domain.catalog import allows, persistence_denies
from bot.domain.states import GrantState, Machine
from bot.store.tables import Grant, Identity
from cloud.base import CloudError, GrantSpec

log = logging.getLogger("leash.grants")

COMPOSED_PROVIDERS = ("aws",)


def composed_denies(
    grant: Grant, others: Sequence[Grant], *, provider: str, guarded: Sequence[str] = ()
) -> tuple[str, ...]:
    """The persistence actions to deny in `grant`'s document, given the other live grants.

    Actions an enforced guardrail denies are left to it (it opens them only for approved
    grants, scoped and self-expiring): repeating them in every grant only eats the inline
    budget that grants share.
    """
    approved = [action for other in others if other.id != grant.id for action in other.actions]
    return tuple(
        action
        for action in persistence_denies(grant.actions, provider=provider)
        if not allows(approved, action) and not allows(guarded, action)
    )


def opens_persistence(grant: Grant, *, provider: str) -> bool:
    """Say whether the grant approves an action other grants would otherwise deny."""
    return len(persistence_denies(grant.actions, provider=provider)) < len(
        persistence_denies((), provider=provider)
    )


def _guarded(controls: Controls) -> tuple[str, ...]:
    """What the identity's enforced guardrail denies (nothing when it has none)."""
    return tuple(controls.guardrail.actions) if controls.guardrail is not None else ()


def spec_of(grant: Grant, deny_actions: Sequence[str]) -> GrantSpec:
    return GrantSpec(
        grant_id=grant.id,
        actions=tuple(grant.actions),
        resources=tuple(grant.resources),
        expires_at=grant.expires_at,
        deny_actions=tuple(deny_actions),
    )


class GrantComposition:
    """Keeps the persistence denies of an identity's live grants from cancelling each other."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def denies_for(
        self, grant: Grant, identity: Identity, controls: Controls | None = None
    ) -> tuple[str, ...]:
        """The denies to write with a grant about to be applied."""
        if identity.provider not in COMPOSED_PROVIDERS:
            return tuple(grant.deny_actions)
        controls = controls or await current_controls(self._ctx, identity)
        live = controls.open_grants(extra=[grant])
        return composed_denies(grant, live, provider=identity.provider, guarded=_guarded(controls))

    async def recompose(
        self, identity: Identity, *, besides: Grant | None = None, changed: Grant | None = None
    ) -> None:
        """Rewrite the live grants whose denies no longer match the identity's live grants.

        `changed` is the grant that started or ended: when it approves no persistence action,
        no other grant's denies depend on it and nothing is read or written.
        A rewrite that fails is logged and left to the next change or the sweep: it can only
        leave a deny in place (a grant less useful), never open anything.
        """
        if identity.provider not in COMPOSED_PROVIDERS:
            return
        if changed is not None and not opens_persistence(changed, provider=identity.provider):
            return
        controls = await current_controls(self._ctx, identity)
        live = controls.open_grants(extra=[besides] if besides is not None else [])
        guarded = _guarded(controls)
        provider = self._ctx.provider_for(identity)
        for grant in live:
            if grant.state != GrantState.ACTIVE:
                continue
            wanted = composed_denies(grant, live, provider=identity.provider, guarded=guarded)
            if set(wanted) == set(grant.deny_actions):
                continue
            try:
                await provider.grant(identity_ref(identity), spec_of(grant, wanted))
            except CloudError:
                log.exception("could not rewrite the denies of grant %s", grant.id)
                continue
            async with self._ctx.transaction() as session:
                still = await set_state(
                    session,
                    Machine.GRANT,
                    grant.id,
                    from_states=GrantState.ACTIVE,
                    to_state=GrantState.ACTIVE,
                    deny_actions=list(wanted),
                )
            if not still:  # revoked while being rewritten: the rewrite must not outlive it
                await self._undo_late_write(identity, grant)

    async def _undo_late_write(self, identity: Identity, grant: Grant) -> None:
        try:
            await self._ctx.provider_for(identity).revoke(identity_ref(identity), grant.id)
        except CloudError:
            log.exception("grant %s ended during a rewrite; reconcile removes it", grant.id)
