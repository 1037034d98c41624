"""A minimal agent that gets its cloud access through Leash over MCP (no language model needed).

It does what an MCP-capable agent runtime does with Leash's tools: launch `leash mcp` (stdio),
see what it may ask for, ask for one permission set with a reason, wait for its owner to
decide, use the grant (here: print it; your agent calls the cloud, retrying AccessDenied until
the time Leash names), then release it.

    export LEASH_TOKEN=lsh_...   # issued by the agent's owner: `token issue <identity>`
    .venv/bin/python examples/mcp_agent.py --url http://localhost:8080 --permission-set s3-read \
        --reason "summarise support ticket 42"

Exit status: 0 when the grant was approved, used and released; 1 when it was denied, expired or
not decided in time; 2 on a tool error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import CallToolResult, Implementation, TextContent


def said(result: CallToolResult) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, TextContent))


async def call(session: ClientSession, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Call a Leash tool; print what it said; stop on a tool error."""
    result = await session.call_tool(tool, arguments)
    print(f"[{tool}] {said(result)}", flush=True)
    if result.is_error or not isinstance(result.structured_content, dict):
        raise SystemExit(2)
    return result.structured_content


def undecided(request: dict[str, Any]) -> bool:
    """Still waiting: for the owner, or for Leash to finish writing the approved grant."""
    grant = request.get("grant") or {}
    return request["state"] == "pending" or grant.get("state") == "applying"


async def work(session: ClientSession, options: argparse.Namespace) -> int:
    await call(session, "list_my_access", {})
    asked = await call(
        session,
        "request_access",
        {
            "permission_set": options.permission_set,
            "duration": options.duration,
            "reason": options.reason,
        },
    )
    loop = asyncio.get_running_loop()
    give_up = loop.time() + options.patience
    decision = asked
    while undecided(decision) and loop.time() < give_up:
        wait = max(1, min(60, int(give_up - loop.time())))
        decision = await call(
            session, "wait_for_decision", {"request_id": asked["id"], "wait_seconds": wait}
        )
    grant = decision.get("grant")
    if decision["state"] != "approved" or not grant or grant["state"] != "active":
        return 1
    # The agent's real work goes here: call the cloud with the identity's own credentials,
    # retrying an AccessDenied until decision["effective_by"] (IAM takes a few seconds).
    print(f"using grant {grant['id']} until {grant['expires_at']}", flush=True)
    await call(session, "release_access", {"grant_id": grant["id"]})
    return 0


async def main(options: argparse.Namespace) -> int:
    command, *arguments = shlex.split(options.server)
    server = StdioServerParameters(
        command=command,
        args=[*arguments, "--url", options.url],
        env=dict(os.environ),  # carries LEASH_TOKEN to `leash mcp`
    )
    client = Implementation(name="leash-example-agent", version="1.0")
    async with (
        stdio_client(server) as (read, write),
        ClientSession(read, write, client_info=client, read_timeout_seconds=90) as session,
    ):
        await session.initialize()
        return await work(session, options)


def default_server() -> str:
    """`leash mcp`, with the `leash` installed beside this interpreter (a venv not activated)."""
    beside = Path(sys.executable).parent / "leash"
    return shlex.join([str(beside) if beside.exists() else "leash", "mcp"])


def options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="Leash's base URL")
    parser.add_argument("--permission-set", default="s3-read")
    parser.add_argument("--duration", default="15m")
    parser.add_argument("--reason", required=True, help="why the task needs it")
    parser.add_argument("--patience", type=float, default=600, help="seconds to wait at most")
    parser.add_argument(
        "--server",
        default=default_server(),
        help="the command that runs leash mcp (default: the leash beside this Python, or on PATH)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    if not os.environ.get("LEASH_TOKEN"):
        sys.exit("Set LEASH_TOKEN to the agent's Leash token.")
    sys.exit(asyncio.run(main(options(sys.argv[1:]))))
