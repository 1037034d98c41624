"""Refreshing the inventory from every configured cloud."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlmodel import col

from bot.domain import audit, registry
from bot.domain.audit import SYSTEM
from bot.domain.lifecycle.context import Context
from bot.domain.lifecycle.stewardship import security_recipients
from bot.domain.messages import Choice, ChoiceStyle, Notice, NoticeKind, Reply
from bot.domain.models import Classification, Identity, Outcome, Ownership
from cloud.base import CloudError

log = logging.getLogger("leash.inventory")


@dataclass(frozen=True, slots=True)
class InventoryReport:
    found: int
    agents: int = 0
    unowned_agents: int = 0
    failures: dict[str, str] = field(default_factory=dict)


class InventoryService:
    """Discovers identities in each cloud and records them with owners from tags."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    async def _announce_tag_change(
        self, identity: Identity, current: str | None, proposed: str
    ) -> None:
        """A tag names another owner: the owner and the admins hear it; an admin decides."""
        recipients = (*((current,) if current else ()), *security_recipients(self._ctx.rules))
        await self._ctx.tell(
            Notice(
                kind=NoticeKind.UNOWNED,
                recipients=tuple(dict.fromkeys(recipients)),
                reply=Reply(
                    text=f"A tag on {identity.name} now names {proposed} as its owner instead of "
                    f"{current}. Whoever can write tags is not thereby its owner: {current} stays "
                    "the owner until an admin confirms the change.",
                    lines=(f"ARN: {identity.native_id}",),
                    choices=(
                        Choice(
                            "Confirm new owner",
                            f"owner confirm {identity.native_id}",
                            ChoiceStyle.PRIMARY,
                        ),
                    ),
                    ok=False,
                ),
            )
        )

    async def refresh(self) -> InventoryReport:
        ctx = self._ctx
        found = agents = unowned = 0
        failures: dict[str, str] = {}
        proposals: list[tuple[Identity, str | None, str]] = []
        for name, provider in ctx.providers.items():
            try:
                result = await provider.discover()
            except CloudError as error:
                failures[name] = str(error)
                log.warning("discovery in %s failed: %s", name, error)
                continue
            failures.update({f"{name}:{scope}": why for scope, why in result.failures.items()})
            now = ctx.clock.now()
            async with ctx.transaction() as session:
                seen = []
                for discovered in result.identities:
                    identity, problems = await registry.upsert_discovered(
                        discovered, rules=ctx.rules, session=session, now=now
                    )
                    for problem in problems:
                        failures[f"{name}:{identity.account}:{identity.name}"] = problem
                    seen.append(identity.id)
                    owner = await session.get(Ownership, identity.id)
                    if owner is not None and owner.proposed_owner and owner.proposed_at == now:
                        proposals.append((identity, owner.primary_owner, owner.proposed_owner))
                        await audit.append(
                            session=session,
                            actor=SYSTEM,
                            event_type="owner.proposed",
                            at=now,
                            identity_id=identity.id,
                            resource=identity.native_id,
                            detail={"from": "tags", "proposed": owner.proposed_owner},
                        )
                    if identity.classification == Classification.AI_AGENT:
                        agents += 1
                        unowned += owner is None or owner.primary_owner is None
                scanned_accounts = {d.ref.account for d in result.identities}
                # Identities gone from a scanned account are marked deleted, never forgotten:
                # the audit trail keeps referring to them.
                gone = await session.exec(
                    update(Identity)
                    .where(
                        col(Identity.provider) == name,
                        col(Identity.account).in_(scanned_accounts),
                        col(Identity.id).not_in(seen),
                        col(Identity.present).is_(True),
                    )
                    .values(present=False, deleted_at=now)
                )
                await audit.append(
                    session=session,
                    actor=SYSTEM,
                    event_type="inventory.refreshed",
                    at=now,
                    outcome=Outcome.FAILURE if result.failures else Outcome.SUCCESS,
                    detail={
                        "provider": name,
                        "found": len(seen),
                        "deleted": gone.rowcount,
                        "failures": dict(result.failures),
                    },
                )
            found += len(seen)
        for identity, current, proposed in proposals:
            await self._announce_tag_change(identity, current, proposed)
        return InventoryReport(
            found=found, agents=agents, unowned_agents=unowned, failures=failures
        )
