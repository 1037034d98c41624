"""examples/mcp_agent.py, run as its README says, against a Leash: it asks, waits, uses and
releases once the owner approves; it gives up (exit 1) when the owner denies."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import sys

from bot.app import Leash
from bot.domain.states import GrantState
from cloud.sandbox import Sandbox
from tests.e2e.helpers import grant as grant_row
from tests.e2e.helpers import inline_policy_names
from tests.e2e.leash_process import ROOT
from tests.e2e.mcp_world import OWNER, base_url
from tests.e2e.mcp_world import token as issue

AGENT = "support-triage-agent"
WAITING = re.compile(r"Request (r-[a-z0-9]{8}) is waiting for approval")
__all__ = ["base_url"]


async def _run_example(base_url: str, bearer: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEASH_")}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "examples" / "mcp_agent.py"),
        "--url",
        base_url,
        "--reason",
        "summarise support ticket 42",
        "--patience",
        "60",
        "--server",
        shlex.join([sys.executable, "-m", "bot", "mcp"]),
        env={**env, "LEASH_TOKEN": bearer, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def _request_id(process: asyncio.subprocess.Process) -> tuple[str, str]:
    assert process.stdout is not None
    seen = ""
    while not (found := WAITING.search(seen)):
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        assert line, seen
        seen += line.decode()
    return found.group(1), seen


async def test_example_agent_is_approved_uses_and_releases(
    leash: Leash, base_url: str, fresh_sandbox: Sandbox
) -> None:
    process = await _run_example(base_url, await issue(leash, AGENT))
    request_id, _ = await _request_id(process)
    await leash.lifecycle.approve(request_id, actor=OWNER)
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    output = out.decode()
    assert process.returncode == 0, output
    used = re.search(r"using grant (g-[a-z0-9]{8})", output)
    assert used, output
    assert f"[release_access] Grant {used.group(1)} is revoked" in output
    assert (await grant_row(leash, used.group(1))).state == GrantState.REVOKED
    assert not [n for n in inline_policy_names(fresh_sandbox, AGENT) if used.group(1) in n]


async def test_example_agent_stops_when_denied(leash: Leash, base_url: str) -> None:
    process = await _run_example(base_url, await issue(leash, AGENT))
    request_id, _ = await _request_id(process)
    await leash.lifecycle.requests.deny(request_id, actor=OWNER, reason="not this week")
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 1, out.decode()
    assert f"Request {request_id} was denied by owner-a: not this week" in out.decode()
