"""/mcp on `leash serve`: MCP's streamable HTTP transport, behind the agent API's bearer token.

Every HTTP request to /mcp is authenticated as the agent API authenticates (`authenticate`,
given by bot.http.server: a missing, unknown or revoked token gets the same 401); the identity's
in-process desk then serves the tool calls it carries, recorded as origin `mcp` with the MCP
client's name. The SDK (and its session manager, with the task group its sessions live in) is
imported and started at the first call, so `leash serve` starts no slower for it, and stopped
with the web app (`close`). Why a bridge and not a second server: see bot.surfaces.mcp.asgi.

Sessions are bounded (bot.surfaces.mcp.sessions): at most `per_identity` open per identity (an
identity at its cap that opens another has its least recently used idle one ended; when all are
busy the opening is refused with 429), `max_sessions` in all, each ended after `idle_seconds`
without a request. A request whose token no longer authenticates gets its 401 and also ends
every session that token opened: a revoked token's sessions do not live on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from bot.surfaces.mcp.desk import AgentDesk
from bot.surfaces.mcp.origin import origin_for
from bot.surfaces.mcp.sessions import SessionBook, SessionsBusy, token_key

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

# Who the request's token stands for (a stable key) and the desk serving it for an origin.
Desks = Callable[[str], AgentDesk]
Authenticate = Callable[[web.Request], Awaitable[tuple[str, Desks]]]

SESSION_HEADER = "Mcp-Session-Id"
PER_IDENTITY = 8  # open sessions per identity: a few runtimes or sub-agents, not a flood
MAX_SESSIONS = 1000  # open sessions server-wide
IDLE_SECONDS = 300.0  # a session with no request in flight this long is ended
log = logging.getLogger(__name__)


def _bearer(request: web.Request) -> str:
    return request.headers.get("Authorization", "").partition(" ")[2].strip()


class McpEndpoint:
    """The aiohttp handler of /mcp (GET, POST, DELETE) and the session manager behind it."""

    def __init__(
        self,
        authenticate: Authenticate,
        *,
        per_identity: int = PER_IDENTITY,
        max_sessions: int = MAX_SESSIONS,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        self._authenticate = authenticate
        self._book = SessionBook(per_identity, idle_seconds)
        self._limits = (max_sessions, idle_seconds)
        self._manager: StreamableHTTPSessionManager | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            principal, desks = await self._authenticate(request)  # 401 before anything else
        except web.HTTPUnauthorized:
            await self._end_sessions_of(token_key(_bearer(request)))
            raise
        manager = await self._started()
        session_id = request.headers.get(SESSION_HEADER)
        if session_id is None:
            return await self._open(manager, request, principal, desks)
        from bot.surfaces.mcp.asgi import answer

        counted = self._book.begin(session_id)
        response: web.StreamResponse | None = None
        try:
            response = await answer(manager, request, principal=principal, desks=_for_client(desks))
            return response
        finally:
            if counted:
                status = response.status if response is not None else 500
                ended = status == 404 or (request.method == "DELETE" and status < 400)
                self._book.finish(session_id, gone=ended)

    async def _open(
        self,
        manager: StreamableHTTPSessionManager,
        request: web.Request,
        principal: str,
        desks: Desks,
    ) -> web.StreamResponse:
        """A request without a session id: it opens a session, within the identity's cap."""
        from bot.surfaces.mcp.asgi import answer, end_session

        try:
            victim = self._book.admit(principal)
        except SessionsBusy:
            return _busy(self._book.per_identity)
        opened: str | None = None
        try:
            if victim is not None:
                await end_session(manager, victim, principal)
            response = await answer(manager, request, principal=principal, desks=_for_client(desks))
            if response.status < 400:
                opened = response.headers.get(SESSION_HEADER)
            return response
        finally:
            self._book.opened(principal, opened, token_key(_bearer(request)))

    async def _end_sessions_of(self, token: str) -> None:
        """End every session `token` opened (it no longer authenticates)."""
        ended = self._book.forget_token(token)
        if not ended or self._manager is None:
            return
        from bot.surfaces.mcp.asgi import end_session

        for session_id, principal in ended:
            try:
                await end_session(self._manager, session_id, principal)
            except Exception:  # one session that will not end must not stop the rest
                log.exception("Could not end MCP session %s", session_id[:16])
        log.info("Ended %d MCP session(s) of a token that no longer authenticates", len(ended))

    async def _started(self) -> StreamableHTTPSessionManager:
        async with self._lock:
            if self._manager is None:
                from bot.surfaces.mcp.asgi import running_manager

                ready: asyncio.Future[StreamableHTTPSessionManager] = (
                    asyncio.get_running_loop().create_future()
                )

                async def run() -> None:
                    try:
                        max_sessions, idle_seconds = self._limits
                        async with running_manager(
                            max_sessions=max_sessions, idle_seconds=idle_seconds
                        ) as manager:
                            ready.set_result(manager)
                            await self._stop.wait()
                    except BaseException as error:
                        if not ready.done():
                            ready.set_exception(error)
                        raise

                self._task = asyncio.create_task(run(), name="leash-mcp-sessions")
                self._manager = await ready
            return self._manager

    async def close(self, _: web.Application | None = None) -> None:
        """Stop the session manager (open sessions end); nothing if it never started."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _for_client(desks: Desks) -> Callable[[str | None], AgentDesk]:
    return lambda client: desks(origin_for(client))


def _busy(cap: int) -> web.Response:
    message = (
        f"This identity already has {cap} MCP sessions open and all are serving requests. "
        "End one you no longer use (DELETE /mcp with its Mcp-Session-Id) or retry when one "
        "is done."
    )
    return web.json_response(
        {"error": "too_many_sessions", "message": message},
        status=429,
        headers={"Retry-After": "5"},
    )
