"""/mcp: the MCP surface's streamable HTTP transport, wired to the agent API's token check and
desks (bot.http.agent_api.authenticated, bot.http.agent_desk.InProcessDesk).

Served inside the cluster only: the Ingress (manifests/k8s/ingress.yaml) routes /slack/events
and /api/messages, not /mcp, as it does not route /api/v1.
"""

from __future__ import annotations

from aiohttp import web

from bot.http.agent_api import authenticated
from bot.http.agent_desk import InProcessDesk
from bot.lifecycle.service import Lifecycle
from bot.surfaces.mcp.remote import Desks, McpEndpoint

PATH = "/mcp"


def mount(app: web.Application, lifecycle: Lifecycle) -> None:
    """Serve MCP at /mcp (GET, POST, DELETE); end its sessions when the app shuts down."""

    async def authenticate(request: web.Request) -> tuple[str, Desks]:
        identity = await authenticated(lifecycle, request)

        def desk(origin: str) -> InProcessDesk:
            return InProcessDesk(lifecycle, identity, origin=origin)

        return identity.id, desk

    endpoint = McpEndpoint(authenticate)
    app.router.add_route("*", PATH, endpoint.handle)
    # On shutdown, before aiohttp waits for open requests: an agent's open stream ends now.
    app.on_shutdown.append(endpoint.close)
