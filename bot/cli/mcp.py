"""`leash mcp`: the MCP server an agent runtime launches (stdio), a client of the agent API."""

from __future__ import annotations

import asyncio
import os
from urllib.parse import urlsplit

import click

TOKEN_VARIABLE = "LEASH_TOKEN"  # noqa: S105 - the name of the variable, not a secret


def _base_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.UsageError(
            f"--url must be Leash's http(s) base URL, e.g. http://leash:8080 (got {url[:80]!r})"
        )
    return url.rstrip("/")


@click.command("mcp")
@click.option(
    "--url",
    envvar="LEASH_URL",
    required=True,
    help="The base URL of a running Leash (its agent API), e.g. http://leash:8080 (LEASH_URL).",
)
def mcp_command(url: str) -> None:
    """Serve Leash's MCP tools over stdio, for an agent runtime that launches tools.

    The agent's token is read from LEASH_TOKEN (never from the command line, where other users
    could read it). Tools: request_access, wait_for_decision, list_my_access, release_access,
    extend_access; each is an agent API call to the Leash at --url.
    """
    base_url = _base_url(url)
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise click.UsageError(
            f"Set {TOKEN_VARIABLE} to the agent's token (its owner issues it with "
            "`token issue <identity>` in chat or the console)."
        )
    from bot.surfaces.mcp.stdio import serve_stdio  # the MCP SDK, only when serving MCP

    asyncio.run(serve_stdio(base_url, token))
