"""The request/grant state machine: the only writer of grants and audit events."""

from __future__ import annotations

from bot.domain import log_context
from bot.domain.audit import Actor
from bot.domain.errors import LeashError
from bot.domain.lifecycle.context import Context, new_id
from bot.domain.lifecycle.deadlines import RequestDeadlines
from bot.domain.lifecycle.drafting import RequestInput
from bot.domain.lifecycle.grants import GrantFlow
from bot.domain.lifecycle.inventory import InventoryReport, InventoryService
from bot.domain.lifecycle.least_privilege import LeastPrivilege, NightlyReport
from bot.domain.lifecycle.ownership import OwnerChange, OwnershipService
from bot.domain.lifecycle.requests import ApprovalResult, RequestFlow
from bot.domain.lifecycle.stewardship import Stewardship
from bot.domain.lifecycle.sweep import GrantSweep, SweepReport
from bot.domain.lifecycle.tokens import IssuedToken, TokenService
from bot.domain.lifecycle.visibility import RequestVisibility
from bot.domain.models import Grant

__all__ = [
    "ApprovalResult",
    "Context",
    "GrantFlow",
    "GrantSweep",
    "InventoryReport",
    "InventoryService",
    "IssuedToken",
    "LeastPrivilege",
    "Lifecycle",
    "NightlyReport",
    "OwnerChange",
    "OwnershipService",
    "RequestDeadlines",
    "RequestFlow",
    "RequestInput",
    "RequestVisibility",
    "Stewardship",
    "SweepReport",
    "TokenService",
    "new_id",
]


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
