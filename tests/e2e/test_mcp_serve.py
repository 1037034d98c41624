"""`leash serve` as a real process (as deployed): an agent's MCP client reaches its /mcp, the
owner approves in the console, the agent works and releases; `leash audit verify` passes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cli.main import main
from bot.store.tables import AuditEvent
from cloud.sandbox import Sandbox
from tests.e2e.helpers import inline_policy
from tests.e2e.leash_process import fast_policy, leash_process, read_until, say, serving_url
from tests.e2e.mcp_world import ORIGIN, TOOLS, ask, data, over_http

AGENT = "support-triage-agent"
TOKEN = re.compile(r"lsh_[A-Za-z0-9_-]{20,}")


async def test_mcp_against_leash_serve_with_console_approval(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'leash.db'}"
    env = {
        **os.environ,
        **fresh_sandbox.env,
        "LEASH_DATABASE_URL": database_url,
        "LEASH_POLICY_FILE": str(fast_policy(tmp_path)),
        "LEASH_CLOUD": "aws",
        "LEASH_PORT": "0",
    }
    async with leash_process(env, console=True) as leash:
        base_url = await serving_url(leash)
        await say(leash, "as owner-a", f"token issue {AGENT}")
        issued = TOKEN.search(await read_until(leash, TOKEN))
        assert issued
        async with over_http(base_url, issued.group(0)) as mcp:
            assert {tool.name for tool in (await mcp.list_tools()).tools} == TOOLS
            asked = await ask(mcp, "answer ticket 12")
            await read_until(leash, f"via {ORIGIN}")  # the owner's card in the console
            waiting = asyncio.create_task(
                mcp.call_tool("wait_for_decision", {"request_id": asked["id"], "wait_seconds": 60})
            )
            await say(leash, "as owner-a", f"approve {asked['id']}")
            grant = data(await asyncio.wait_for(waiting, timeout=45))["grant"]
            artefact = f"leash-grant-{grant['id']}"
            assert inline_policy(fresh_sandbox, AGENT, artefact) is not None
            released = data(await mcp.call_tool("release_access", {"grant_id": grant["id"]}))
            assert released["state"] == "revoked"
            assert inline_policy(fresh_sandbox, AGENT, artefact) is None
        leash.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(leash.wait(), timeout=60) == 0

    engine = create_async_engine(database_url)
    try:
        async with AsyncSession(engine) as session:
            rows = await session.exec(
                select(AuditEvent.event_type, AuditEvent.origin)
                .where(col(AuditEvent.identity_id) == asked["identity_id"])
                .order_by(col(AuditEvent.seq))
            )
            trail = [tuple(row) for row in rows.all()]
    finally:
        await engine.dispose()
    assert ("request.created", ORIGIN) in trail
    assert ("grant.revoked", ORIGIN) in trail
    verified = await asyncio.to_thread(
        CliRunner().invoke, main, ["audit", "verify"], env={"LEASH_DATABASE_URL": database_url}
    )
    assert verified.exit_code == 0, verified.output
    assert "verified" in verified.output.lower(), verified.output
