"""The agent HTTP API under /api/v1: agents ask for themselves, wait, extend and release.

Each route authenticates the bearer token, then calls the token's identity's `InProcessDesk`
(bot.http.agent_desk), where the operations live; the MCP surface's /mcp transport calls the
same desk.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.domain.errors import InvalidInputError, LeashError
from bot.http import openapi as openapi_spec
from bot.http.agent_desk import (
    MAX_WAIT_SECONDS,
    ExtendBody,
    InProcessDesk,
    RequestBody,
    TooManyWaitsError,
)
from bot.lifecycle.service import Lifecycle
from bot.store.tables import Identity
from bot.surfaces.mcp.origin import origin_from_headers

Handler = Callable[[web.Request], Awaitable[web.Response]]

LIFECYCLE_KEY = web.AppKey("lifecycle", Lifecycle)
# An operation answers its JSON, or its JSON and the status to answer it with.
Operation = Callable[
    [InProcessDesk, web.Request], Awaitable[dict[str, Any] | tuple[dict[str, Any], int]]
]


def _error(error: LeashError) -> web.Response:
    response = web.json_response({"error": error.code, "message": str(error)}, status=error.status)
    if isinstance(error, TooManyWaitsError):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


async def authenticated(lifecycle: Lifecycle, request: web.Request) -> Identity:
    """The identity the request's bearer token is bound to; 401 (JSON) when there is none.

    The agent API's routes and the MCP surface's /mcp transport both authenticate this way."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise web.HTTPUnauthorized(
            text=json.dumps(
                {"error": "unauthorized", "message": "Send Authorization: Bearer <token>."}
            ),
            content_type="application/json",
        )
    identity = await lifecycle.tokens.authenticate(token.strip())
    if identity is None:
        raise web.HTTPUnauthorized(
            text=json.dumps(
                {"error": "unauthorized", "message": "The token is unknown or revoked."}
            ),
            content_type="application/json",
        )
    return identity


def _handler(operation: Operation, *, status: int = 200) -> Handler:
    """An agent API route: authenticate the token, run `operation` on the token's identity's
    desk (recorded as coming through `leash mcp` when the call says so), answer JSON."""

    async def handle(request: web.Request) -> web.Response:
        identity = await authenticated(request.app[LIFECYCLE_KEY], request)
        origin = origin_from_headers(request.headers, default="api")
        desk = InProcessDesk(request.app[LIFECYCLE_KEY], identity, origin=origin)
        try:
            answer = await operation(desk, request)
        except LeashError as error:
            return _error(error)
        if isinstance(answer, tuple):
            return web.json_response(answer[0], status=answer[1])
        return web.json_response(answer, status=status)

    return handle


async def _create(desk: InProcessDesk, request: web.Request) -> tuple[dict[str, Any], int]:
    """201 with the new request; 200 with the same request when it was already waiting."""
    answer, created = await desk.asked(await request.read())
    return answer, 201 if created else 200


def _hung_up(request: web.Request) -> Callable[[], bool]:
    """Whether the client of `request` has gone (aiohttp runs a handler on regardless)."""

    def gone() -> bool:
        return request.transport is None or request.transport.is_closing()

    return gone


async def _read(desk: InProcessDesk, request: web.Request) -> dict[str, Any]:
    try:
        wait = float(request.query.get("wait", "0"))
    except ValueError:
        raise InvalidInputError("wait must be a number of seconds", field="wait") from None
    return await desk.request(request.match_info["request_id"], wait=wait, gone=_hung_up(request))


async def _release(desk: InProcessDesk, request: web.Request) -> dict[str, Any]:
    return await desk.release(request.match_info["grant_id"])


async def _extend(desk: InProcessDesk, request: web.Request) -> dict[str, Any]:
    return await desk.extend(request.match_info["grant_id"], await request.read())


async def _me(desk: InProcessDesk, _: web.Request) -> dict[str, Any]:
    return await desk.me()


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of the agent API."""
    return openapi_spec.openapi_document(
        RequestBody.model_json_schema(),
        ExtendBody.model_json_schema(),
        max_wait_seconds=MAX_WAIT_SECONDS,
    )


def routes(lifecycle: Lifecycle) -> web.Application:
    """The /api/v1 sub-application."""
    app = web.Application()
    app[LIFECYCLE_KEY] = lifecycle
    app.router.add_post("/requests", _handler(_create))
    app.router.add_get("/requests/{request_id}", _handler(_read))
    app.router.add_post("/grants/{grant_id}/release", _handler(_release))
    app.router.add_post("/grants/{grant_id}/extend", _handler(_extend, status=201))
    app.router.add_get("/me", _handler(_me))
    app.router.add_get("/openapi.json", openapi)
    return app


__all__ = ["LIFECYCLE_KEY", "authenticated", "openapi_document", "routes"]
