"""`leash mcp`: Leash's MCP server over stdio, speaking to a running Leash's agent API.

Stdout carries MCP's JSON-RPC messages only; anything Leash logs goes to stderr.
"""

from __future__ import annotations

import aiohttp
from mcp.server.stdio import stdio_server

from bot.surfaces.mcp.client import HttpDesk
from bot.surfaces.mcp.desk import AgentDesk
from bot.surfaces.mcp.server import Context, build_server, leash_version


async def serve_stdio(base_url: str, token: str) -> None:
    """Serve one MCP client on stdin/stdout until it closes them."""
    async with aiohttp.ClientSession() as http:

        async def desk_of(ctx: Context, client: str | None) -> AgentDesk:
            return HttpDesk(http, base_url, token, client=client)

        server = build_server(desk_of, version=leash_version())
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
