"""The one aiohttp Application: /api/v1, /healthz, /readyz, /metrics and, when configured,
/slack/events and /api/messages (Teams)."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import disable_created_metrics

from bot.domain import log_context
from bot.http import agent_api as api
from bot.http import mcp_route, readiness
from bot.http.instruments import Instruments
from bot.http.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from bot.http.metrics import render as render_metrics
from bot.http.metrics import sessions as metrics_sessions
from bot.lifecycle.service import Lifecycle
from bot.store.engine import head_revision
from bot.store.errors import UNREACHABLE_MESSAGE, database_unreachable

if TYPE_CHECKING:  # imported where used, so a process without chat starts sooner
    from bot.surfaces.slack import SlackSurface
    from bot.surfaces.teams import TeamsSurface

log = logging.getLogger("leash.web")
access_log = logging.getLogger("leash.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Asked every few seconds by orchestrators and Prometheus: their access lines are DEBUG.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# What a 503 asks a client to wait while the database is unreachable.
RETRY_AFTER_SECONDS = 30


@web.middleware
async def _request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tag the request's log lines, its access line included, with the caller's X-Request-Id
    (or a new one); echo it on the response."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    started = time.monotonic()
    with log_context.http_request(request_id):
        try:
            response = await handler(request)
        except web.HTTPException as error:
            error.headers[REQUEST_ID_HEADER] = request_id
            _access(request, error.status, started)
            raise
        except Exception:  # _errors answers these; only a failure in it gets here
            _access(request, 500, started)
            raise
        _access(request, response.status, started)
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


def _access(request: web.Request, status: int, started: float) -> None:
    """One access line per request, named by its http_request_id (bound by the caller).

    It replaces aiohttp's own (`aiohttp.access`, silenced by bot.logs), which is written after
    the request's context is gone and so could not carry the id. Probes and scrapes are DEBUG.
    """
    milliseconds = round((time.monotonic() - started) * 1000, 1)
    access_log.log(
        logging.DEBUG if request.path in QUIET_PATHS else logging.INFO,
        "%s %s answered %d in %.1f ms",
        request.method,
        request.path,
        status,
        milliseconds,
        extra={
            "method": request.method,
            "path": request.path,  # never the query string: it may carry a secret
            "status": status,
            "duration_ms": milliseconds,
            "remote": request.remote,
            "user_agent": request.headers.get("User-Agent"),
        },
    )


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
    except Exception as error:
        correlation = secrets.token_hex(4)
        if database_unreachable(error):
            log.warning(
                "database unreachable [%s] on %s %s: %s",
                correlation,
                request.method,
                request.path,
                error,
            )
            return web.json_response(
                {
                    "error": "database_unavailable",
                    "message": f"{UNREACHABLE_MESSAGE} (reference {correlation})",
                },
                status=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        log.exception("unhandled error [%s] on %s %s", correlation, request.method, request.path)
        return web.json_response(
            {"error": "internal", "message": f"Internal error (reference {correlation})."},
            status=500,
        )


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text=json.dumps({"status": "ok"}), content_type="application/json")


def _readyz(
    lifecycle: Lifecycle, surfaces: list[str], leader: Callable[[], str]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def readyz(_: web.Request) -> web.Response:
        """Ready when the database answers, is migrated to this build's schema, and this
        replica can take the audit chain's lock (so it can record what it does)."""
        checks: dict[str, object] = {"surfaces": surfaces, "scheduler": leader()}
        try:
            found = await readiness.probe(lifecycle.engine())
        except TimeoutError:
            checks["database"] = f"unreachable: no answer within {readiness.PROBE_SECONDS:g} s"
            return web.json_response({"status": "not ready", **checks}, status=503)
        except Exception as error:  # the database is down or refuses us
            checks["database"] = f"unreachable: {type(error).__name__}"
            return web.json_response({"status": "not ready", **checks}, status=503)
        revision = found.revision
        checks["database"] = "ok"
        checks["schema"] = revision or "none"
        checks["writes"] = found.write_problem or "ok"
        ready = revision == head_revision() and found.write_problem is None
        if revision != head_revision():
            checks["schema"] = f"{revision or 'none'} (this build needs {head_revision()})"
        return web.json_response(
            {"status": "ready" if ready else "not ready", **checks}, status=200 if ready else 503
        )

    return readyz


def _metrics(
    lifecycle: Lifecycle, instruments: Instruments, leader: Callable[[], str]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    sessions = metrics_sessions(lifecycle.engine())

    async def metrics(_: web.Request) -> web.Response:
        body = await render_metrics(
            sessions=sessions,
            now=lifecycle.now(),
            instruments=instruments,
            leader=lambda: leader().startswith("leader"),
        )
        response = web.Response(body=body)
        response.content_type = "text/plain"
        response.headers["Content-Type"] = METRICS_CONTENT_TYPE
        return response

    return metrics


def _counting(instruments: Instruments) -> Middleware:
    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        try:
            response = await handler(request)
        except web.HTTPException as error:
            instruments.http_answered(name, error.status)
            raise
        instruments.http_answered(name, response.status)
        return response

    return count


def build_web_app(
    lifecycle: Lifecycle,
    *,
    max_body_bytes: int,
    slack: SlackSurface | None = None,
    teams: TeamsSurface | None = None,
    leader: Callable[[], str] = lambda: "leader (single process)",
) -> web.Application:
    """The HTTP app; `leader` says whether this replica runs the scheduler (for probes).

    Its /metrics shows the counters the lifecycle's observer keeps (the composition root
    wires `Instruments`); a lifecycle built without them gets a set for this app alone.
    """
    # One process-wide choice, made where the metrics endpoint is built: no `_created` series
    # (a scrape-time timestamp per series that PromQL does not use and that doubles the output).
    disable_created_metrics()  # type: ignore[no-untyped-call]  # (untyped in the library)
    observer = lifecycle.observer()
    instruments = observer if isinstance(observer, Instruments) else Instruments()
    app = web.Application(
        middlewares=[_request_id, _counting(instruments), _errors],
        client_max_size=max_body_bytes,
    )
    surfaces = ["agent-api", *(["slack"] if slack else []), *(["teams"] if teams else [])]
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", _readyz(lifecycle, surfaces, leader))
    app.router.add_get("/metrics", _metrics(lifecycle, instruments, leader))
    app.add_subapp("/api/v1", api.routes(lifecycle))
    mcp_route.mount(app, lifecycle)  # MCP for agents (issue 21); not routed by the Ingress
    if slack is not None:
        from bot.surfaces.slack import slack_route

        app.router.add_post("/slack/events", slack_route(slack))
    if teams is not None:
        app.router.add_post("/api/messages", teams.route())
    return app
