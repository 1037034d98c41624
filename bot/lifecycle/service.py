"""The one entry point surfaces, the API and the scheduler use: access, posture and inventory."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.access.deadlines import RequestDeadlines
from bot.access.grants import GrantFlow
from bot.access.requests import ApprovalResult, RequestFlow
from bot.access.sweep import GrantSweep
from bot.access.tokens import TokenService
from bot.access.visibility import RequestVisibility
from bot.core import persons
from bot.core.context import Context
from bot.core.observations import Observer
from bot.domain import log_context
from bot.domain.actors import Actor
from bot.domain.errors import LeashError
from bot.domain.rules import Rules
from bot.inventory.ownership import OwnershipService
from bot.inventory.refresh import InventoryService
from bot.inventory.stewardship import Stewardship
from bot.lifecycle.conversations import Conversations
from bot.lifecycle.queries import Queries
from bot.posture.least_privilege import LeastPrivilege
from bot.store import audit
from bot.store.tables import Grant


class Lifecycle:
    """One entry point for surfaces, the API and the scheduler."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self.queries = Queries(ctx)
        self.conversations = Conversations(ctx)
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

    @property
    def rules(self) -> Rules:
        """The policy file's rules (read-only for callers)."""
        return self._ctx.rules

    def now(self) -> datetime:
        """The lifecycle clock's time (a fake clock in tests)."""
        return self._ctx.clock.now()

    def observer(self) -> Observer:
        """What counts this process's events (the /metrics instruments, when wired)."""
        return self._ctx.observer

    def is_admin(self, actor: Actor) -> bool:
        return actor.is_one_of(self._ctx.rules.admins)

    async def resolve(self, actor: Actor) -> Actor:
        """One person whatever surface they typed on: link their handles before any rule."""
        return await persons.resolve(self._ctx, actor)

    async def refuse(
        self,
        error: LeashError,
        *,
        actor: Actor,
        event_type: str,
        identity_id: str | None = None,
        grant_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> LeashError:
        """Audit a refused attempt and hand the error back to raise (see Context.refuse)."""
        return await self._ctx.refuse(
            error,
            actor=actor,
            event_type=event_type,
            identity_id=identity_id,
            grant_id=grant_id,
            detail=detail,
        )

    async def seal_audit(self) -> None:
        """Seal the audit chain's tail at start-up (see bot.store.audit.seal)."""
        async with self._ctx.transaction() as session:
            await audit.seal(session=session, at=self._ctx.clock.now())

    def engine(self) -> AsyncEngine:
        """The database engine, for the readiness probe and the metrics counts only."""
        bind = self._ctx.sessions.kw.get("bind")
        if not isinstance(bind, AsyncEngine):
            raise TypeError("the lifecycle's sessions are not bound to an engine")
        return bind

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
                raise await self._ctx.refuse(
                    error,
                    actor=actor,
                    event_type="grant.extend_failed",
                    request_id=result.request.id,
                ) from None
        else:
            grant = await self.grants.apply(result.grant.id)
        return ApprovalResult(result.request, grant, result.approvals)
