"""/mcp on `leash serve`: MCP's streamable HTTP transport, behind the agent API's bearer token.

Every HTTP request to /mcp is authenticated as the agent API authenticates (`authenticate`,
given by bot.http.server: a missing, unknown or revoked token gets the same 401); the identity's
in-process desk then serves the tool calls it carries, recorded as origin `mcp` with the MCP
client's name. The SDK (and its session manager, with the task group its sessions live in) is
imported and started at the first call, so `leash serve` starts no slower for it, and stopped
with the web app (`close`). Why a bridge and not a second server: see bot.surfaces.mcp.asgi.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from bot.surfaces.mcp.desk import AgentDesk
from bot.surfaces.mcp.origin import origin_for

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

# Who the request's token stands for (a stable key) and the desk serving it for an origin.
Desks = Callable[[str], AgentDesk]
Authenticate = Callable[[web.Request], Awaitable[tuple[str, Desks]]]


class McpEndpoint:
    """The aiohttp handler of /mcp (GET, POST, DELETE) and the session manager behind it."""

    def __init__(self, authenticate: Authenticate) -> None:
        self._authenticate = authenticate
        self._manager: StreamableHTTPSessionManager | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        principal, desks = await self._authenticate(request)  # 401 before anything else
        manager = await self._started()
        from bot.surfaces.mcp.asgi import answer

        return await answer(
            manager,
            request,
            principal=principal,
            desks=lambda client: desks(origin_for(client)),
        )

    async def _started(self) -> StreamableHTTPSessionManager:
        async with self._lock:
            if self._manager is None:
                from bot.surfaces.mcp.asgi import running_manager

                ready: asyncio.Future[StreamableHTTPSessionManager] = (
                    asyncio.get_running_loop().create_future()
                )

                async def run() -> None:
                    try:
                        async with running_manager() as manager:
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
