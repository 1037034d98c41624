"""Default-deny of privileged actions for agents, opened only by approved, expiring grants."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import col, select

from bot.access.controls import Controls, current_controls
from bot.core.context import Context, identity_ref
from bot.domain.actors import SYSTEM, Actor
from bot.domain.errors import LeashError
from bot.domain.findings import exemptions_for, guardrail_actions
from bot.domain.rules import GuardrailMode
from bot.domain.states import Classification, EnforcementKind, EnforcementState
from bot.inventory import registry
from bot.posture import enforcement
from bot.store import audit
from bot.store.tables import Enforcement, Grant, Identity
from cloud.base import CloudError, Exemption, GuardrailChange

log = logging.getLogger("leash.guardrails")


@dataclass(frozen=True, slots=True)
class GuardrailRun:
    """What one pass over the agents did."""

    written: tuple[str, ...] = ()
    reported: tuple[str, ...] = ()
    unchanged: int = 0
    failures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GuardrailView:
    """`guardrail show`: the identity's guardrail as Leash and the cloud hold it."""

    identity: Identity
    enforced: bool
    mode: GuardrailMode
    denied: int  # privileged actions the guardrail denies
    mechanism: str
    exemptions: tuple[Exemption, ...]
    changed: bool  # the next write would change what the cloud holds
    held: bool  # the cloud holds a guardrail (perhaps an older one)


class GuardrailFlow:
    """Writes each agent's `leash-guardrail`, with exemptions for its live privileged grants."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def actions(self, identity: Identity) -> tuple[str, ...]:
        """What the guardrail denies this identity, in its own cloud's terms."""
        return guardrail_actions(self._ctx.rules.least_privilege, provider=identity.provider)

    async def exemptions(
        self, identity: Identity, *, extra: Sequence[Grant] = (), without: str | None = None
    ) -> tuple[Exemption, ...]:
        """The exemptions the identity's open grants (plus `extra`, minus `without`) need."""
        controls = await current_controls(self._ctx, identity)
        grants = controls.open_grants(extra=extra, without=without)
        return exemptions_for(grants, self.actions(identity))

    async def _guarded(self, identity: Identity) -> Enforcement | None:
        async with self._ctx.sessions() as session:
            return await enforcement.live(session, identity.id, EnforcementKind.GUARDRAIL)

    async def refresh(
        self,
        identity: Identity,
        *,
        extra: Sequence[Grant] = (),
        without: str | None = None,
        controls: Controls | None = None,
    ) -> bool:
        """Rewrite an enforced guardrail for the identity's current grants; False if it has none.

        `controls`, when the caller has just read them, saves reading them again.
        Raises CloudError when the write fails, so a grant that needs an exemption fails
        closed instead of being applied behind a deny.
        """
        controls = controls or await current_controls(self._ctx, identity)
        if controls.guardrail is None:
            return False
        grants = controls.open_grants(extra=extra, without=without)
        exemptions = exemptions_for(grants, self.actions(identity))
        provider = self._ctx.provider_for(identity)
        await provider.guardrail(identity_ref(identity), self.actions(identity), exemptions)
        return True

    async def show(self, reference: str) -> GuardrailView:
        """Whether the identity is guarded, what would change, and which exemptions run."""
        async with self._ctx.sessions() as session:
            identity = await registry.resolve(reference, session=session)
        row = await self._guarded(identity)
        exemptions = await self.exemptions(identity)
        try:
            change = await self._write(identity, exemptions, dry_run=True)
        except CloudError as error:
            raise LeashError(f"Cannot read the guardrail of {identity.name}: {error}") from None
        return GuardrailView(
            identity=identity,
            enforced=row is not None,
            mode=self._ctx.rules.least_privilege.guardrail,
            denied=len(self.actions(identity)),
            mechanism=change.mechanism,
            exemptions=tuple(exemptions),
            changed=change.changed,
            held=change.before is not None,
        )

    async def _write(
        self, identity: Identity, exemptions: Sequence[Exemption], *, dry_run: bool
    ) -> GuardrailChange:
        provider = self._ctx.provider_for(identity)
        return await provider.guardrail(
            identity_ref(identity), self.actions(identity), exemptions, dry_run=dry_run
        )

    async def apply(
        self,
        reference: str | None = None,
        *,
        actor: Actor = SYSTEM,
        mode: GuardrailMode | None = None,
        dry_run: bool = False,
    ) -> GuardrailRun:
        """Guard one identity, or every present agent; report-only unless mode is enforce."""
        ctx = self._ctx
        mode = mode or ctx.rules.least_privilege.guardrail
        if mode is GuardrailMode.OFF:
            return GuardrailRun()
        async with ctx.sessions() as session:
            if reference is not None:
                identity = await registry.resolve(reference, session=session)
                await enforcement.check_may_act(
                    identity, actor=actor, session=session, rules=ctx.rules, what="guard"
                )
                targets = [identity]
            else:
                targets = list(
                    (
                        await session.exec(
                            select(Identity)
                            .where(
                                col(Identity.present),
                                col(Identity.classification) == Classification.AI_AGENT,
                            )
                            .order_by(col(Identity.name))
                        )
                    ).all()
                )
        written: list[str] = []
        reported: list[str] = []
        failures: list[str] = []
        unchanged = 0
        for identity in targets:
            try:
                exemptions = await self.exemptions(identity)
                enforce = mode is GuardrailMode.ENFORCE and not dry_run
                change = await self._write(identity, exemptions, dry_run=not enforce)
            except CloudError as error:
                failures.append(f"{identity.name}: {error}")
                continue
            if not change.changed and (not enforce or await self._guarded(identity)):
                unchanged += 1
                continue
            if enforce:
                await self._record_enforced(identity, change, actor=actor)
                written.append(identity.name)
            else:
                if not dry_run:
                    await self._record_report(identity, change, actor=actor)
                reported.append(identity.name)
        return GuardrailRun(tuple(written), tuple(reported), unchanged, tuple(failures))

    async def _record_enforced(
        self, identity: Identity, change: GuardrailChange, *, actor: Actor
    ) -> None:
        ctx = self._ctx
        detail = {"mechanism": change.mechanism, "size": len(change.after)}
        try:
            row = await enforcement.claim(
                ctx,
                identity,
                EnforcementKind.GUARDRAIL,
                actor=actor,
                actions=list(self.actions(identity)),
                detail=detail,
                reason=None,
            )
        except enforcement.AlreadyEnforcedError:
            row = None
        if row is None:  # guarded already: the rewrite (e.g. an expired exemption) is audited
            async with ctx.transaction() as session:
                await audit.append(
                    session=session,
                    actor=actor,
                    event_type="guardrail.rewritten",
                    at=ctx.clock.now(),
                    identity_id=identity.id,
                    resource=identity.native_id,
                    detail=detail,
                )
            return
        await enforcement.activate(
            ctx,
            row,
            identity,
            actor=actor,
            snapshot={"before": change.before},
            event_type="guardrail.applied",
            detail=detail,
        )

    async def _record_report(
        self, identity: Identity, change: GuardrailChange, *, actor: Actor
    ) -> None:
        async with self._ctx.sessions() as session:
            already = (
                await session.exec(
                    select(Enforcement).where(
                        col(Enforcement.identity_id) == identity.id,
                        col(Enforcement.kind) == EnforcementKind.GUARDRAIL,
                        col(Enforcement.state) == EnforcementState.REPORTED,
                    )
                )
            ).first()
        if already is not None:
            return
        await enforcement.record_report(
            self._ctx,
            identity,
            EnforcementKind.GUARDRAIL,
            actor=actor,
            actions=list(self.actions(identity)),
            detail={"mechanism": change.mechanism, "size": len(change.after)},
            reason=None,
            event_type="guardrail.reported",
        )
