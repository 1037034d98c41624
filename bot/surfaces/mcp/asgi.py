"""One aiohttp request handed to the SDK's ASGI session manager, and its answer handed back.

The SDK serves streamable HTTP as an ASGI application; Leash serves HTTP with aiohttp. Rather
than a second web server (and port) in the process, this bridge gives the ASGI app what it asks
for: a scope built from the aiohttp request, the already-read body as the one `http.request`
message, then `http.disconnect` once the answer is done or the client has gone; and it writes
what the app sends (status, headers, body chunks, streamed or not) to an aiohttp
StreamResponse. Imported only when /mcp is first called: it imports the SDK.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from bot.domain.errors import LeashError
from bot.surfaces.mcp.desk import AgentDesk
from bot.surfaces.mcp.server import Context, build_server, leash_version

DESK_KEY = "leash.desk"  # the ASGI scope key holding this request's desk factory
DISCONNECT_POLL_SECONDS = 1.0
DeskFactory = Callable[[str | None], AgentDesk]
Message = MutableMapping[str, Any]


async def _desk_of(ctx: Context, client: str | None) -> AgentDesk:
    """The desk of the HTTP request that carried this message (authenticated by Leash)."""
    if ctx.request is None or DESK_KEY not in ctx.request.scope:
        raise LeashError("This MCP call did not come through Leash's /mcp route.")
    factory: DeskFactory = ctx.request.scope[DESK_KEY]
    return factory(client)


@asynccontextmanager
async def running_manager(
    *, max_sessions: int, idle_seconds: float
) -> AsyncIterator[StreamableHTTPSessionManager]:
    """The SDK's session manager for Leash's MCP server, running until the context exits.

    JSON answers (no SSE stream per POST): a tool call that waits answers when it is done.
    At most `max_sessions` sessions server-wide, each ended after `idle_seconds` with no request
    in flight (set here, not left to the SDK's defaults of 10,000 and 30 minutes). Sessions are
    kept in this process; see the README on replicas."""
    manager = StreamableHTTPSessionManager(
        app=build_server(_desk_of, version=leash_version()),
        json_response=True,
        max_sessions=max_sessions,
        session_idle_timeout=idle_seconds,
    )
    async with manager.run():
        yield manager


def _user(principal: str) -> AuthenticatedUser:
    """The SDK binds each session to the credential that opened it: here the identity."""
    return AuthenticatedUser(
        AccessToken(token="-", client_id=principal, scopes=[], subject=principal)  # noqa: S106
    )


def _scope(request: web.Request, principal: str, desks: DeskFactory) -> dict[str, Any]:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    host, port = tuple(sockname)[:2] if isinstance(sockname, tuple) else ("", 0)
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.raw_path.split("?", 1)[0].encode("latin-1"),
        "query_string": request.query_string.encode("latin-1"),
        "root_path": "",
        # The bytes as received: a header aiohttp decoded as UTF-8 need not encode as Latin-1.
        "headers": [(name.lower(), value) for name, value in request.raw_headers],
        "client": (request.remote or "", 0),
        "server": (str(host), int(port)),
        "state": {},
        "user": _user(principal),
        DESK_KEY: desks,
    }


async def end_session(
    manager: StreamableHTTPSessionManager, session_id: str, principal: str
) -> int | None:
    """End one session as its client would (DELETE with its id and identity); the status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "DELETE",
        "scheme": "http",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "query_string": b"",
        "root_path": "",
        "headers": [(MCP_SESSION_ID_HEADER.encode("ascii"), session_id.encode("ascii"))],
        "client": ("", 0),
        "server": ("", 0),
        "state": {},
        "user": _user(principal),
    }
    status: list[int] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await manager.handle_request(scope, receive, send)
    return status[0] if status else None


async def answer(
    manager: StreamableHTTPSessionManager,
    request: web.Request,
    *,
    principal: str,
    desks: DeskFactory,
) -> web.StreamResponse:
    """Run one HTTP request through the SDK's transport; the aiohttp response it wrote."""
    body = await request.read()
    finished = asyncio.Event()
    written: list[web.StreamResponse] = []
    given = False

    async def receive() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        while not finished.is_set():
            if request.transport is None or request.transport.is_closing():
                break
            try:
                await asyncio.wait_for(finished.wait(), DISCONNECT_POLL_SECONDS)
            except TimeoutError:
                continue
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            response = web.StreamResponse(status=message["status"])
            for name, value in message.get("headers", []):
                response.headers.add(name.decode("latin-1"), value.decode("latin-1"))
            written.append(response)
        elif message["type"] == "http.response.body" and written:
            response = written[0]
            if not response.prepared:
                await response.prepare(request)
            if message.get("body"):
                await response.write(message["body"])
            if not message.get("more_body", False):
                await response.write_eof()

    try:
        await manager.handle_request(_scope(request, principal, desks), receive, send)
    finally:
        finished.set()
    if not written:
        return web.json_response(
            {"error": "internal", "message": "The MCP transport gave no answer."}, status=500
        )
    if not written[0].prepared:
        await written[0].prepare(request)
        await written[0].write_eof()
    return written[0]
