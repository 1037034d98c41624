"""Refreshing the inventory from every configured cloud."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import update
from sqlmodel import col

from bot.domain import audit, registry
from bot.domain.audit import SYSTEM
from bot.domain.lifecycle.context import Context
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

    async def refresh(self) -> InventoryReport:
        ctx = self._ctx
        found = agents = unowned = 0
        failures: dict[str, str] = {}
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
                    if identity.classification == Classification.AI_AGENT:
                        agents += 1
                        owner = await session.get(Ownership, identity.id)
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
        return InventoryReport(
            found=found, agents=agents, unowned_agents=unowned, failures=failures
        )
