"""The agent API's operations for one token's identity, as plain calls.

The agent API's handlers (bot.http.agent_api) authenticate the bearer token, then call an
`InProcessDesk`; so does the MCP surface's /mcp transport (bot.surfaces.mcp.remote, which gets
desks from bot.http.server). Every rule of the agent API is therefore written once, here and
below: the token's identity is the only one an agent may ask for or release, the lifecycle
decides tiers and approvers, refusals are audited. Answers are the agent API's JSON shapes;
failures raise `LeashError` with the sentence to show.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.access.drafting import RequestInput
from bot.access.request_limits import AlreadyWaitingError
from bot.domain.actors import Actor
from bot.domain.durations import parse_duration
from bot.domain.errors import InvalidInputError, LeashError, NotAllowedError
from bot.domain.states import ActorKind, RequestState, shown_state
from bot.lifecycle.service import Lifecycle
from bot.store.tables import AccessRequest, Grant, Identity

Json = dict[str, Any]
MAX_WAIT_SECONDS = 60
# A wait looks at the request after 0.25 s, then less often up to every 0.75 s: a decision is
# seen within a second, and a long wait costs a query a second at most.
FIRST_POLL_SECONDS = 0.25
LAST_POLL_SECONDS = 0.75
# Waits of one identity at once (API and MCP alike); more are answered 429.
MAX_WAITS_PER_IDENTITY = 4
RETRY_WAIT_SECONDS = 5
# Waits running now, per Lifecycle (one per running Leash) and identity id.
_WAITS: WeakKeyDictionary[Lifecycle, Counter[str]] = WeakKeyDictionary()


def waits_running(lifecycle: Lifecycle, identity_id: str) -> int:
    """How many waits of this identity are running now."""
    return _WAITS.get(lifecycle, Counter())[identity_id]


def _never() -> bool:
    return False


class TooManyWaitsError(LeashError):
    """An identity already has MAX_WAITS_PER_IDENTITY waits running."""

    status = 429
    code = "too_many_waits"
    retry_after = RETRY_WAIT_SECONDS

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} already has {MAX_WAITS_PER_IDENTITY} waits running; let one finish "
            f"before waiting again (retry in {RETRY_WAIT_SECONDS} s).",
            field="wait",
        )


class RequestBody(BaseModel):
    """What an agent posts to ask for a permission."""

    model_config = ConfigDict(extra="forbid")

    identity: str | None = Field(default=None, max_length=512)
    permission_set: str | None = Field(default=None, max_length=128)
    actions: list[str] = Field(default_factory=list, max_length=50)
    resources: list[str] = Field(default_factory=list, max_length=50)
    duration: str = Field(min_length=1, max_length=32, description="e.g. 15m, 1h")
    reason: str = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one_of(self) -> RequestBody:
        if bool(self.permission_set) == bool(self.actions):
            raise ValueError("give either permission_set or actions")
        return self


class ExtendBody(BaseModel):
    """What an agent posts to ask for more time on a live grant."""

    model_config = ConfigDict(extra="forbid")

    duration: str = Field(min_length=1, max_length=32, description="more time, e.g. 30m")
    reason: str = Field(min_length=1, max_length=1000)


Body = TypeVar("Body", RequestBody, ExtendBody)


def request_json(request: AccessRequest, grant: Grant | None, *, now: datetime) -> Json:
    return {
        "id": request.id,
        "state": request.state,
        "identity_id": request.identity_id,
        "tier": request.tier,
        "actions": request.actions,
        "resources": request.resources,
        "duration_seconds": request.duration_seconds,
        "approvals_required": request.approvals_required,
        "approvers": request.approvers,
        "reasons": request.decision_reasons,
        "decide_by": request.decide_by.isoformat(),
        "decided_by": request.decided_by,
        "decision_note": request.decision_note,
        "extends_grant_id": request.extends_grant_id,
        "grant": grant_json(grant, now=now) if grant else None,
    }


def grant_json(grant: Grant, *, now: datetime) -> Json:
    return {
        "id": grant.id,
        "state": shown_state(grant, now=now),
        "expires_at": grant.expires_at.isoformat(),
        "artefact": grant.artefact,
        "mechanism": grant.mechanism,
        "actions": grant.actions,
        "resources": grant.resources,
    }


def _invalid(error: ValidationError) -> InvalidInputError:
    first = error.errors()[0]
    where = (".".join(str(p) for p in first["loc"]) or "body")[:100]
    return InvalidInputError(f"{where}: {first['msg']}", field=where)


class InProcessDesk:
    """The agent API's operations for `identity`, recorded as coming through `origin`."""

    def __init__(self, lifecycle: Lifecycle, identity: Identity, *, origin: str = "api") -> None:
        self._lifecycle = lifecycle
        self._identity = identity
        self._actor = Actor(name=identity.id, kind=ActorKind.AGENT, origin=origin)

    async def _refused(self, error: LeashError, where: str, **ids: str | None) -> LeashError:
        """Audit a refused call (an agent probing its limits leaves a trail); return the error."""
        event = "grant.revoke_refused" if where.endswith("release") else "request.refused"
        return await self._lifecycle.refuse(
            error,
            actor=self._actor,
            event_type=event,
            identity_id=self._identity.id,
            detail={"api": where},
            grant_id=ids.get("grant_id"),
        )

    async def _parsed(
        self, model: type[Body], body: Json | bytes, where: str
    ) -> tuple[Body, timedelta]:
        """The body as `model` and its duration; a refusal (audited) when either is invalid."""
        try:
            parsed = (
                model.model_validate_json(body)
                if isinstance(body, bytes)
                else (model.model_validate(body))
            )
            return parsed, parse_duration(parsed.duration)
        except ValidationError as error:
            raise await self._refused(_invalid(error), where) from None
        except LeashError as error:
            raise await self._refused(error, where) from None

    async def ask(self, body: Json | bytes) -> Json:
        """Create a request for this identity (or the identity the body names, refused unless
        it is this one); the created request, or the same one already waiting."""
        return (await self.asked(body))[0]

    async def asked(self, body: Json | bytes) -> tuple[Json, bool]:
        """As `ask`, and whether the request is new (False: the same one was already waiting,
        and no second approval card was sent)."""
        parsed, duration = await self._parsed(RequestBody, body, "POST /api/v1/requests")
        return await self._submitted(
            RequestInput(
                identity=parsed.identity or self._identity.id,
                duration=duration,
                reason=parsed.reason,
                permission_set=parsed.permission_set,
                actions=tuple(parsed.actions),
                resources=tuple(parsed.resources),
            )
        )

    async def _submitted(self, data: RequestInput) -> tuple[Json, bool]:
        try:
            created = await self._lifecycle.requests.submit(data, actor=self._actor)
        except AlreadyWaitingError as waiting:
            return request_json(waiting.request, None, now=self._lifecycle.now()), False
        return request_json(created, None, now=self._lifecycle.now()), True

    async def request(
        self, request_id: str, *, wait: float, gone: Callable[[], bool] = _never
    ) -> Json:
        """A request of this identity; with `wait`, until it is decided (and its grant applied),
        `wait` seconds have passed or `gone()` says the caller hung up. Polls the database,
        less often the longer nothing changes; at most MAX_WAITS_PER_IDENTITY waits at once
        per identity (TooManyWaitsError beyond). Nothing is held meanwhile."""
        if not 0 <= wait <= MAX_WAIT_SECONDS:
            raise InvalidInputError(f"wait must be between 0 and {MAX_WAIT_SECONDS}", field="wait")
        if wait == 0:
            return (await self._poll(request_id))[0]
        waits = _WAITS.setdefault(self._lifecycle, Counter())
        if waits[self._identity.id] >= MAX_WAITS_PER_IDENTITY:
            raise TooManyWaitsError(self._identity.name)
        waits[self._identity.id] += 1
        try:
            return await self._wait(request_id, wait, gone)
        finally:
            waits[self._identity.id] -= 1
            if waits[self._identity.id] <= 0:
                del waits[self._identity.id]

    async def _wait(self, request_id: str, wait: float, gone: Callable[[], bool]) -> Json:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        pause = FIRST_POLL_SECONDS
        while True:
            last = loop.time() >= deadline or gone()
            answer, settled = await self._poll(request_id)
            if settled or last:
                return answer
            await asyncio.sleep(min(pause, max(0.0, deadline - loop.time())))
            pause = min(pause * 2, LAST_POLL_SECONDS)

    async def _poll(self, request_id: str) -> tuple[Json, bool]:
        """The request as JSON, and whether it is decided (and its grant applied)."""
        access, grant = await self._lifecycle.queries.own_request(
            request_id, identity_id=self._identity.id
        )
        settled = access.state != RequestState.PENDING and (
            grant is None or grant.state != "applying"
        )
        return request_json(access, grant, now=self._lifecycle.now()), settled

    async def _own_grant(self, grant_id: str, where: str) -> Grant:
        grant = await self._lifecycle.queries.grant(grant_id)
        if grant.identity_id != self._identity.id:
            verb = "release" if where.endswith("release") else "extend"
            raise await self._refused(
                NotAllowedError(f"An agent token can {verb} only its own grants."),
                where,
                grant_id=grant.id,
            )
        return grant

    async def release(self, grant_id: str) -> Json:
        """Revoke this identity's grant now."""
        grant = await self._own_grant(grant_id, "POST /api/v1/grants/{grant_id}/release")
        released = await self._lifecycle.grants.revoke(
            grant.id, actor=self._actor, reason="released by the agent"
        )
        return grant_json(released, now=self._lifecycle.now())

    async def extend(self, grant_id: str, body: Json | bytes) -> Json:
        """Ask for more time on this identity's live grant: a request approved like any other."""
        where = "POST /api/v1/grants/{grant_id}/extend"
        parsed, duration = await self._parsed(ExtendBody, body, where)
        grant = await self._own_grant(grant_id, where)
        try:
            created = await self._lifecycle.requests.extend(
                grant.id, duration=duration, reason=parsed.reason, actor=self._actor
            )
        except AlreadyWaitingError as waiting:
            created = waiting.request
        return request_json(created, None, now=self._lifecycle.now())

    async def me(self) -> Json:
        """The identity, its owners and team, its live grants, its pending requests, and the
        permission sets that name something for its cloud."""
        queries = self._lifecycle.queries
        identity, ownership = await queries.owners(self._identity.id)
        _, grants = await queries.grants_on(identity.id)
        asked = await queries.requests_by(self._actor)
        now = self._lifecycle.now()
        sets = self._lifecycle.rules.permission_sets
        return {
            "identity": {
                "id": identity.id,
                "name": identity.name,
                "cloud": identity.provider,
                "account": identity.account,
                "native_id": identity.native_id,
                "owner": ownership.primary_owner if ownership else None,
                "backup_owner": ownership.backup_owner if ownership else None,
                "team": ownership.team if ownership else None,
            },
            "grants": [grant_json(grant, now=now) for grant, _ in grants],
            "pending": [
                request_json(request, None, now=now)
                for request, _ in asked
                if request.state == RequestState.PENDING and request.identity_id == identity.id
            ],
            "permission_sets": [
                {"name": name, "description": spec.description, "tier": spec.tier}
                for name, spec in sorted(sets.items())
                if spec.for_provider(identity.provider)
            ],
        }


__all__ = [
    "MAX_WAITS_PER_IDENTITY",
    "MAX_WAIT_SECONDS",
    "ExtendBody",
    "InProcessDesk",
    "RequestBody",
    "TooManyWaitsError",
    "grant_json",
    "request_json",
    "waits_running",
]
