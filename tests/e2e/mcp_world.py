"""The `mcp` SDK's own client against Leash: over streamable HTTP (/mcp) and over stdio
(`leash mcp` as a child process), and what the tests read back (audit events, tool text)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import mcp_types as types
import pytest
from aiohttp.test_utils import TestServer
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from sqlmodel import col, select

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.states import ActorKind
from bot.http.server import build_web_app
from bot.store.tables import AuditEvent
from tests.e2e.leash_process import ROOT

OWNER = Actor("owner-a", ActorKind.USER, "console")
CLIENT = types.Implementation(name="leash-test-agent", version="1.0")
ORIGIN = "mcp (leash-test-agent 1.0)"
# A bare initialize request, for tests that speak HTTP to /mcp without the SDK's client.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "probe", "version": "0"},
    },
}
TOOLS = {"request_access", "wait_for_decision", "list_my_access", "release_access", "extend_access"}


@pytest.fixture
async def base_url(leash: Leash) -> AsyncIterator[str]:
    """The web app `leash serve` runs (agent API, /mcp), served on loopback for `leash`."""
    server = TestServer(build_web_app(leash.lifecycle, max_body_bytes=64 * 1024))
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def ask(mcp: ClientSession, reason: str, duration: str = "10m") -> dict[str, Any]:
    """request_access for the s3-read set; the pending request."""
    arguments = {"permission_set": "s3-read", "duration": duration, "reason": reason}
    return data(await mcp.call_tool("request_access", arguments))


async def token(leash: Leash, identity: str, *, owner: Actor = OWNER) -> str:
    return (await leash.lifecycle.tokens.issue(identity, actor=owner)).token


@asynccontextmanager
async def over_http(base_url: str, bearer: str) -> AsyncIterator[ClientSession]:
    """An initialized MCP session with Leash's /mcp, sending `bearer` on every request."""
    headers = {"Authorization": f"Bearer {bearer}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(90)) as http,
        streamable_http_client(f"{base_url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write, client_info=CLIENT, read_timeout_seconds=90) as session,
    ):
        await session.initialize()
        yield session


@asynccontextmanager
async def over_stdio(base_url: str, bearer: str | None) -> AsyncIterator[ClientSession]:
    """An initialized MCP session with `python -m bot mcp --url base_url`, LEASH_TOKEN=bearer."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEASH_")}
    env |= {"PYTHONPATH": str(ROOT), **({"LEASH_TOKEN": bearer} if bearer else {})}
    server = StdioServerParameters(
        command=sys.executable, args=["-m", "bot", "mcp", "--url", base_url], env=env, cwd=ROOT
    )
    async with (
        stdio_client(server) as (read, write),
        ClientSession(read, write, client_info=CLIENT, read_timeout_seconds=90) as session,
    ):
        await session.initialize()
        yield session


def text(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


def data(result: types.CallToolResult) -> dict[str, Any]:
    assert not result.is_error, text(result)
    assert isinstance(result.structured_content, dict), result
    return result.structured_content


async def read_json(session: ClientSession, uri: str) -> dict[str, Any]:
    read = await session.read_resource(uri)
    content = read.contents[0]
    assert isinstance(content, types.TextResourceContents)
    parsed: dict[str, Any] = json.loads(content.text)
    return parsed


async def events(leash: Leash, **where: str) -> list[AuditEvent]:
    """Audit events, oldest first, matching `where` (column=value)."""
    async with leash.context.sessions() as session:
        query = select(AuditEvent).order_by(col(AuditEvent.seq))
        for column, value in where.items():
            query = query.where(getattr(AuditEvent, column) == value)
        return list((await session.exec(query)).all())
