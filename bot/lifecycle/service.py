"""The one entry point surfaces, the API and the scheduler use: access, posture and inventory."""

from __future__ import annotations

from bot.access.deadlines import RequestDeadlines
from bot.access.grants import GrantFlow
from bot.access.requests import ApprovalResult, RequestFlow
from bot.access.sweep import GrantSweep
from bot.access.tokens import TokenService
from bot.access.visibility import RequestVisibility
from bot.core.context import Context
from bot.domain import log_context
from bot.domain.actors import Actor
from bot.domain.errors import LeashError
from bot.inventory.ownership import OwnershipService
from bot.inventory.refresh import InventoryService
from bot.inventory.stewardship import Stewardship
from bot.posture.least_privilege import LeastPrivilege
from bot.store.tables import Grant


class Lifecycle:
    """One entry point for surfaces, the API and the scheduler."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.requests = RequestFlow(ctx)
        self.visibility = RequestVisibility(ctx)
        self.deadlines = RequestDeadlines(ctx)
        self.grants = GrantFlow(ctx)
        self.sweep = GrantSweep(ctx, self.grants)
        self.tokens = TokenService(ctx)
        self.owners = OwnershipService(ctx)
        self.inventory = InventoryService(ctx)
        self.stewardship = Stewardship(ctx)
        self.least_privilege = LeastPrivilege(ctx, self.stewardship)

    async def approve(
        self, request_id: str, *, actor: Actor, note: str | None = None
    ) -> ApprovalResult:
        """Approve; when the approval completes the request, apply (or extend) its grant."""
        with log_context.about(request_id=request_id.strip()[:16]):
            return await self._approve(request_id, actor=actor, note=note)

    async def _approve(self, request_id: str, *, actor: Actor, note: str | None) -> ApprovalResult:
        result = await self.requests.approve(request_id, actor=actor, note=note)
        return await self._carry_out(result, actor=actor)

    async def carry_out(self, result: ApprovalResult, *, actor: Actor) -> ApprovalResult:
        """Apply (or extend) the grant of a recorded approval: `approve` after `requests.approve`.

        A surface that must answer before the cloud does records the approval with
        `requests.approve`, answers, then calls this.
        """
        with log_context.about(request_id=result.request.id):
            return await self._carry_out(result, actor=actor)

    async def _carry_out(self, result: ApprovalResult, *, actor: Actor) -> ApprovalResult:
        if result.grant is None:
            return result
        grant: Grant
        if result.request.extends_grant_id:
            try:
                grant = await self.grants.extend(result.request)
            except LeashError as error:
                raise await self.ctx.refuse(
                    error,
                    actor=actor,
                    event_type="grant.extend_failed",
                    request_id=result.request.id,
                ) from None
        else:
            grant = await self.grants.apply(result.grant.id)
        return ApprovalResult(result.request, grant, result.approvals)
