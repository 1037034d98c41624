"""The one aiohttp Application: /api/v1, /healthz and, when configured, /slack/events and
/api/messages (Teams)."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot import api
from bot.domain.lifecycle import Lifecycle
from bot.surfaces.slack import SlackSurface, slack_route
from bot.surfaces.teams import TeamsSurface

log = logging.getLogger("leash.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn any unexpected error into JSON with a correlation id; never a stack trace."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.content_type != "application/json" and error.status >= 400:
            return web.json_response(
                {
                    "error": error.reason.lower().replace(" ", "_"),
                    "message": error.text or error.reason,
                },
                status=error.status,
            )
        raise
    except Exception:
        correlation = secrets.token_hex(4)
        log.exception("unhandled error [%s] on %s %s", correlation, request.method, request.path)
        return web.json_response(
            {"error": "internal", "message": f"Internal error (reference {correlation})."},
            status=500,
        )


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text=json.dumps({"status": "ok"}), content_type="application/json")


def build_web_app(
    lifecycle: Lifecycle,
    *,
    max_body_bytes: int,
    slack: SlackSurface | None = None,
    teams: TeamsSurface | None = None,
) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=max_body_bytes)
    app.router.add_get("/healthz", healthz)
    app.add_subapp("/api/v1", api.routes(lifecycle))
    if slack is not None:
        app.router.add_post("/slack/events", slack_route(slack))
    if teams is not None:
        app.router.add_post("/api/messages", teams.route())
    return app
