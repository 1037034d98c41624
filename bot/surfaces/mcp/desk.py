"""What an MCP tool may ask of Leash for its agent: the agent API's operations, as one interface.

Both implementations answer with the agent API's JSON shapes (its OpenAPI document describes
them) and raise `LeashError` carrying the sentence a person would read:

- `bot.surfaces.mcp.client.HttpDesk` calls the agent API over HTTP (stdio mode, `leash mcp`);
- `bot.http.agent_desk.InProcessDesk` is what the agent API's handlers themselves call (the
  /mcp transport of `leash serve`).

So a rule is enforced once, behind the agent API, whichever way the agent came in.
"""

from __future__ import annotations

from typing import Any, Protocol

Json = dict[str, Any]


class AgentDesk(Protocol):
    """The agent API's operations for the one identity a token is bound to."""

    async def me(self) -> Json:
        """The identity (name, cloud, owner, team), its live grants and pending requests, and
        the permission sets it may ask for."""
        ...

    async def ask(self, body: Json) -> Json:
        """Create a request (the agent API's RequestBody); the created request."""
        ...

    async def request(self, request_id: str, *, wait: float) -> Json:
        """A request of this identity; waits up to `wait` seconds for its decision."""
        ...

    async def release(self, grant_id: str) -> Json:
        """Revoke this identity's grant now; the grant after release."""
        ...

    async def extend(self, grant_id: str, body: Json) -> Json:
        """Ask for more time on a live grant (`duration`, `reason`); the extension request."""
        ...
