"""The agent HTTP API under /api/v1: agents ask for themselves, wait, and release."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.access.drafting import RequestInput
from bot.domain.actors import Actor
from bot.domain.durations import parse_duration
from bot.domain.errors import (
    InvalidInputError,
    LeashError,
    NotAllowedError,
)
from bot.domain.states import ActorKind, RequestState, shown_state
from bot.http import openapi as openapi_spec
from bot.lifecycle.service import Lifecycle
from bot.store.tables import AccessRequest, Grant, Identity

LIFECYCLE_KEY = web.AppKey("lifecycle", Lifecycle)
MAX_WAIT_SECONDS = 60
POLL_SECONDS = 0.25


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


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def _request_json(request: AccessRequest, grant: Grant | None, *, now: datetime) -> dict[str, Any]:
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
        "grant": _grant_json(grant, now=now) if grant else None,
    }


def _grant_json(grant: Grant, *, now: datetime) -> dict[str, Any]:
    return {
        "id": grant.id,
        "state": shown_state(grant, now=now),
        "expires_at": grant.expires_at.isoformat(),
        "artefact": grant.artefact,
        "mechanism": grant.mechanism,
    }


async def _agent(request: web.Request) -> Identity:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise web.HTTPUnauthorized(
            text=json.dumps(
                {"error": "unauthorized", "message": "Send Authorization: Bearer <token>."}
            ),
            content_type="application/json",
        )
    identity = await request.app[LIFECYCLE_KEY].tokens.authenticate(token.strip())
    if identity is None:
        raise web.HTTPUnauthorized(
            text=json.dumps(
                {"error": "unauthorized", "message": "The token is unknown or revoked."}
            ),
            content_type="application/json",
        )
    return identity


def _actor(identity: Identity) -> Actor:
    return Actor(name=identity.id, kind=ActorKind.AGENT, origin="api")


async def create_request(request: web.Request) -> web.Response:
    identity = await _agent(request)
    lifecycle = request.app[LIFECYCLE_KEY]
    refused: LeashError | None = None
    try:
        body = RequestBody.model_validate_json(await request.read())
        duration = parse_duration(body.duration)
    except ValidationError as error:
        first = error.errors()[0]
        where = (".".join(str(p) for p in first["loc"]) or "body")[:100]
        refused = InvalidInputError(f"{where}: {first['msg']}", field=where)
    except LeashError as error:
        refused = error
    if refused is not None:
        # Audited like any refused request: an agent probing its limits leaves a trail.
        await lifecycle.refuse(
            refused,
            actor=_actor(identity),
            event_type="request.refused",
            identity_id=identity.id,
            detail={"api": "POST /api/v1/requests"},
        )
        return _error(refused.status, refused.code, str(refused))
    try:
        created = await lifecycle.requests.submit(
            RequestInput(
                identity=body.identity or identity.id,
                duration=duration,
                reason=body.reason,
                permission_set=body.permission_set,
                actions=tuple(body.actions),
                resources=tuple(body.resources),
            ),
            actor=_actor(identity),
        )
    except LeashError as error:
        return _error(error.status, error.code, str(error))
    return web.json_response(_request_json(created, None, now=lifecycle.now()), status=201)


async def _load_own(
    lifecycle: Lifecycle, request_id: str, identity: Identity
) -> tuple[AccessRequest, Grant | None]:
    return await lifecycle.queries.own_request(request_id, identity_id=identity.id)


async def get_request(request: web.Request) -> web.Response:
    identity = await _agent(request)
    lifecycle = request.app[LIFECYCLE_KEY]
    try:
        wait = float(request.query.get("wait", "0"))
    except ValueError:
        return _error(400, "invalid_input", "wait must be a number of seconds")
    if not 0 <= wait <= MAX_WAIT_SECONDS:
        return _error(400, "invalid_input", f"wait must be between 0 and {MAX_WAIT_SECONDS}")
    deadline = asyncio.get_running_loop().time() + wait
    try:
        while True:
            access, grant = await _load_own(lifecycle, request.match_info["request_id"], identity)
            settled = access.state != RequestState.PENDING and (
                grant is None or grant.state != "applying"
            )
            if settled or asyncio.get_running_loop().time() >= deadline:
                return web.json_response(_request_json(access, grant, now=lifecycle.now()))
            await asyncio.sleep(POLL_SECONDS)
    except LeashError as error:
        return _error(error.status, error.code, str(error))


async def release_grant(request: web.Request) -> web.Response:
    identity = await _agent(request)
    lifecycle = request.app[LIFECYCLE_KEY]
    grant_id = request.match_info["grant_id"]
    try:
        grant = await lifecycle.queries.grant(grant_id)
        if grant.identity_id != identity.id:
            raise await lifecycle.refuse(
                NotAllowedError("An agent token can release only its own grants."),
                actor=_actor(identity),
                event_type="grant.revoke_refused",
                grant_id=grant.id,
            )
        released = await lifecycle.grants.revoke(
            grant.id, actor=_actor(identity), reason="released by the agent"
        )
    except LeashError as error:
        return _error(error.status, error.code, str(error))
    return web.json_response(_grant_json(released, now=lifecycle.now()))


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of the agent API."""
    return openapi_spec.openapi_document(
        RequestBody.model_json_schema(), max_wait_seconds=MAX_WAIT_SECONDS
    )


def routes(lifecycle: Lifecycle) -> web.Application:
    """The /api/v1 sub-application."""
    app = web.Application()
    app[LIFECYCLE_KEY] = lifecycle
    app.router.add_post("/requests", create_request)
    app.router.add_get("/requests/{request_id}", get_request)
    app.router.add_post("/grants/{grant_id}/release", release_grant)
    app.router.add_get("/openapi.json", openapi)
    return app


__all__ = ["openapi_document", "routes"]
