"""What the hostile tests compare before and after: rows that matter and cloud writes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, func, select

from bot.app import Leash
from bot.domain.states import Outcome
from bot.store.audit import verify
from bot.store.tables import AccessRequest, Approval, AuditEvent, Grant
from cloud.sandbox import Sandbox

READ_PREFIXES = ("Get", "List", "Describe", "Simulate", "Generate", "Lookup")


@dataclass(frozen=True, slots=True)
class Rows:
    """How many requests, approvals and grants exist, and how many refusals were audited."""

    requests: int
    approvals: int
    grants: int
    refusals: int

    @property
    def changes(self) -> tuple[int, int, int]:
        return (self.requests, self.approvals, self.grants)


async def rows(leash: Leash) -> Rows:
    """Count the rows a hostile input must not create."""
    async with leash.context.sessions() as session:

        async def count(model: type[AccessRequest | Approval | Grant]) -> int:
            return (await session.exec(select(func.count()).select_from(model))).one()

        refusals = (
            await session.exec(
                select(func.count())
                .select_from(AuditEvent)
                .where(col(AuditEvent.outcome) == Outcome.FAILURE)
            )
        ).one()
        return Rows(await count(AccessRequest), await count(Approval), await count(Grant), refusals)


def cloud_writes(sandbox: Sandbox, *, since: int = 0) -> list[str]:
    """Name every AWS call Leash made after call number `since` that could change something."""
    return [
        f"{call.service}:{call.operation}"
        for call in sandbox.moto.calls()[since:]
        if call.by_leash
        and call.service != "sts"  # assuming a role changes nothing
        and not call.operation.startswith(READ_PREFIXES)
    ]


async def audit_chain_ok(leash: Leash) -> bool:
    """Say whether the audit chain still verifies."""
    async with leash.context.sessions() as session:
        return (await verify(session=session)).ok
