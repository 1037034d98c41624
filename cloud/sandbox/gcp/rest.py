"""Serve the emulated REST APIs with aiohttp on its own thread and event loop."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web

from cloud.sandbox.gcp.permissions import rest_permission
from cloud.sandbox.gcp.state import ApiCall, ApiError, GcpState, JsonObject, Status
from cloud.sandbox.operation_log import CloudOperation

LOOPBACK = "127.0.0.1"
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RestCall:
    """One decoded request: path parameters, query parameters and JSON body."""

    params: Mapping[str, str]
    query: Mapping[str, str]
    body: JsonObject


Handler = Callable[[GcpState, RestCall], JsonObject]


@dataclass(frozen=True, slots=True)
class Route:
    """An HTTP method and raw-path pattern, the API method it is, and its handler."""

    verb: str
    pattern: re.Pattern[str]
    service: str
    method: str
    resource: str  # a str.format template over the decoded path and query parameters
    handler: Handler


def route(
    verb: str, pattern: str, service: str, method: str, resource: str, handler: Handler
) -> Route:
    """Build a route; `pattern` is a regex over the raw (still percent-encoded) path."""
    return Route(verb, re.compile(pattern), service, method, resource, handler)


def decoded(segment: str) -> str:
    """Percent-decode until stable: clients encode some names twice (`%252F`)."""
    for _ in range(3):
        once = unquote(segment)
        if once == segment:
            break
        segment = once
    return segment


class RestServer:
    """An aiohttp server on a loopback port, dispatching to routes over one GcpState."""

    def __init__(self, *, state: GcpState, routes: Sequence[Route]) -> None:
        self._state = state
        self._routes = tuple(routes)
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="gcp-rest", daemon=True)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind((LOOPBACK, 0))
        self.port: int = self._socket.getsockname()[1]

    @classmethod
    def start(cls, *, state: GcpState, routes: Sequence[Route]) -> RestServer:
        """Start serving on a free loopback port and wait until it listens."""
        server = cls(state=state, routes=routes)
        server._thread.start()
        asyncio.run_coroutine_threadsafe(server._serve(), server._loop).result(timeout=10)
        return server

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    async def _serve(self) -> None:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()

    def stop(self) -> None:
        """Stop serving, then stop and close the loop."""
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
            self._runner = None
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._loop.is_closed():
            self._loop.close()
        self._socket.close()

    async def _handle(self, request: web.Request) -> web.Response:
        raw_path = request.raw_path.split("?", 1)[0]
        for candidate in self._routes:
            match = candidate.pattern.fullmatch(raw_path)
            if candidate.verb == request.method and match:
                params = {key: decoded(value) for key, value in match.groupdict().items()}
                names = _Blank({**request.query, **params})
                resource = candidate.resource.format_map(names)
                self._state.record(ApiCall(candidate.service, candidate.method, resource))
                self._state.record_operation(
                    CloudOperation(
                        cloud="gcp",
                        service=candidate.service,
                        operation=candidate.method,
                        permission=rest_permission(candidate.service, candidate.method, params),
                        user_agent=_user_agent(request),
                    )
                )
                try:
                    body = await _json_body(request)
                    call = RestCall(params=params, query=dict(request.query), body=body)
                    return web.json_response(candidate.handler(self._state, call))
                except ApiError as error:
                    return _error(error)
                except Exception:
                    _log.exception("the GCP emulator failed on %s %s", request.method, raw_path)
                    return _error(ApiError(Status.INTERNAL, "The emulator failed; see its log."))
        return _error(
            ApiError(Status.NOT_FOUND, f"The emulator has no API at {request.method} {raw_path}.")
        )


def _user_agent(request: web.Request) -> str:
    """Return the User-Agent and x-goog-api-client headers (the client info is in both)."""
    sent = (request.headers.get("User-Agent", ""), request.headers.get("x-goog-api-client", ""))
    return " ".join(value for value in sent if value)


class _Blank(dict[str, str]):
    """Format-map that renders a parameter the request did not send as empty."""

    def __missing__(self, key: str) -> str:
        return ""


async def _json_body(request: web.Request) -> JsonObject:
    if not request.can_read_body:
        return {}
    text = await request.text()
    if not text.strip():
        return {}
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        raise ApiError(Status.INVALID_ARGUMENT, f"Invalid JSON payload: {error}.") from error
    if not isinstance(body, dict):
        raise ApiError(Status.INVALID_ARGUMENT, "The JSON payload must be an object.")
    return body


def _error(error: ApiError) -> web.Response:
    return web.json_response(error.body(), status=error.status.http_code)
