"""Serve the emulated ARM and Graph APIs over https with aiohttp on its own thread and loop."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import threading
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web

from cloud.sandbox.azure.permissions import azure_permission
from cloud.sandbox.azure.state import (
    ApiCall,
    ArmError,
    AzureState,
    GraphError,
    JsonObject,
    clean_scope,
)
from cloud.sandbox.azure.tls import LOOPBACK, Certificate
from cloud.sandbox.operation_log import CloudOperation

TOKEN = "emulator-token"  # noqa: S105 - the fixed fake bearer token the emulator accepts
GRAPH_PREFIX = "/v1.0/"
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Call:
    """One decoded request: path parameters, query parameters and JSON body."""

    method: str
    params: Mapping[str, str]
    query: Mapping[str, str]
    body: JsonObject
    base_url: str = ""  # scheme and host the client used, for absolute next links

    def filter(self) -> str | None:
        """Return the request's `$filter`, if any."""
        return self.query.get("$filter")


@dataclass(frozen=True, slots=True)
class Reply:
    """A status code and, unless it is 204, a JSON body."""

    status: int
    body: JsonObject | None = None


Handler = Callable[[AzureState, Call], Reply]


@dataclass(frozen=True, slots=True)
class Route:
    """A verb and path pattern, the api-versions it accepts (None: Graph), and its handler."""

    verb: str
    pattern: re.Pattern[str]
    api_versions: frozenset[str] | None
    handler: Handler


def arm(verb: str, pattern: str, api_versions: Collection[str], handler: Handler) -> Route:
    """Build an ARM route; `pattern` is a case-insensitive regex over the cleaned path."""
    return Route(verb, re.compile(pattern, re.IGNORECASE), frozenset(api_versions), handler)


def graph(verb: str, pattern: str, handler: Handler) -> Route:
    """Build a Microsoft Graph route under /v1.0 (Graph takes no api-version)."""
    return Route(verb, re.compile(pattern, re.IGNORECASE), None, handler)


def ok(body: JsonObject, status: int = 200) -> Reply:
    """Return a JSON reply."""
    return Reply(status, body)


class HttpsServer:
    """An aiohttp server on a loopback port, over TLS, dispatching to routes over one state."""

    def __init__(
        self, *, state: AzureState, routes: Sequence[Route], certificate: Certificate
    ) -> None:
        self._state = state
        self._routes = tuple(routes)
        self._certificate = certificate
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="azure-emu", daemon=True
        )
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind((LOOPBACK, 0))
        self.port: int = self._socket.getsockname()[1]

    @classmethod
    def start(
        cls, *, state: AzureState, routes: Sequence[Route], certificate: Certificate
    ) -> HttpsServer:
        """Start serving on a free loopback port and wait until it listens."""
        server = cls(state=state, routes=routes, certificate=certificate)
        server._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(server._serve(), server._loop).result(timeout=10)
        except BaseException:
            server.stop()
            raise
        return server

    @property
    def endpoint(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"

    async def _serve(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.SockSite(
            self._runner, self._socket, ssl_context=self._certificate.server_context()
        )
        await site.start()

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
        path = clean_scope(unquote(request.rel_url.raw_path)) or "/"
        is_graph = path.lower().startswith(GRAPH_PREFIX)
        api_version = request.query.get("api-version", "")
        self._state.record(ApiCall(request.method, path, api_version))
        self._state.record_operation(
            CloudOperation(
                cloud="azure",
                service="graph" if is_graph else "arm",
                operation=f"{request.method} {path}",
                permission=azure_permission(request.method, path, is_graph=is_graph),
                user_agent=request.headers.get("User-Agent", ""),
            )
        )
        error_type = GraphError if is_graph else ArmError
        try:
            _authenticate(request.headers.get("Authorization", ""), error_type)
            route, match = self._route(request.method, path, is_graph)
            if route.api_versions is not None:
                _check_api_version(api_version, route.api_versions)
            body = await _json_body(request, error_type)
            params, query = match.groupdict(default=""), dict(request.query)
            call = Call(request.method, params, query, body, f"https://{request.host}")
            reply = route.handler(self._state, call)
        except ArmError as error:
            return _response(Reply(error.status, error.body()), is_graph)
        except Exception:
            _log.exception("the Azure emulator failed on %s %s", request.method, path)
            failure = error_type(500, "InternalServerError", "The emulator failed; see its log.")
            return _response(Reply(500, failure.body()), is_graph)
        return _response(reply, is_graph)

    def _route(self, verb: str, path: str, is_graph: bool) -> tuple[Route, re.Match[str]]:
        for candidate in self._routes:
            if (candidate.api_versions is None) != is_graph or candidate.verb != verb:
                continue
            match = candidate.pattern.fullmatch(path)
            if match:
                return candidate, match
        if is_graph:
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{path}'.")
        raise ArmError(404, "NotFound", f"The emulator has no API at {verb} {path}.")


def _authenticate(header: str, error_type: type[ArmError]) -> None:
    scheme, _, token = header.partition(" ")
    if not header:
        code = "InvalidAuthenticationToken" if error_type is GraphError else "AuthenticationFailed"
        raise error_type(401, code, "Authentication failed. The 'Authorization' header is missing.")
    if scheme.lower() != "bearer" or token.strip() != TOKEN:
        raise error_type(401, "InvalidAuthenticationToken", "The access token is invalid.")


def _check_api_version(api_version: str, supported: frozenset[str]) -> None:
    if not api_version:
        raise ArmError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if api_version not in supported:
        raise ArmError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{api_version}' is invalid. "
            f"The supported versions are '{','.join(sorted(supported, reverse=True))}'.",
        )


async def _json_body(request: web.Request, error_type: type[ArmError]) -> JsonObject:
    if not request.can_read_body:
        return {}
    text = await request.text()
    if not text.strip():
        return {}
    try:
        body = json.loads(text)
    except json.JSONDecodeError as error:
        message = f"The request content is invalid: {error}."
        raise error_type(400, "InvalidRequestContent", message) from error
    if not isinstance(body, dict):
        raise error_type(400, "InvalidRequestContent", "The request content must be an object.")
    return body


def _response(reply: Reply, is_graph: bool) -> web.Response:
    request_id = str(uuid.uuid4())
    headers = (
        {"request-id": request_id, "client-request-id": request_id}
        if is_graph
        else {"x-ms-request-id": request_id, "x-ms-correlation-request-id": request_id}
    )
    if reply.body is None:
        return web.Response(status=reply.status, headers=headers)
    return web.json_response(reply.body, status=reply.status, headers=headers)
