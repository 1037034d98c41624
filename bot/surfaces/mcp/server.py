"""The MCP server (the official `mcp` SDK's low-level `Server`): tools and resources over a desk.

`build_server(desk_of)` is shared by both transports; `desk_of(ctx)` says which desk serves the
call in hand (stdio: the agent API client holding LEASH_TOKEN; /mcp: the token's identity's
in-process desk). Import this module only when the MCP surface starts: it imports the SDK.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server

from bot.domain.errors import LeashError
from bot.surfaces.mcp import answers, calls, tools
from bot.surfaces.mcp.desk import AgentDesk
from bot.surfaces.mcp.origin import client_label

Context = ServerRequestContext[Any, Any]
DeskOf = Callable[[Context, str | None], Awaitable[AgentDesk]]
IDENTITY_URI = "leash://me/identity"
GRANTS_URI = "leash://me/grants"
INSTRUCTIONS = (
    "Leash gives this agent's own cloud identity temporary permissions its human owner "
    "approves. On AccessDenied: request_access (only what the task needs, with a reason), then "
    "wait_for_decision; once approved retry until the time it names; release_access when done."
)


def leash_version() -> str:
    """Leash's version, as the server names itself to MCP clients."""
    try:
        return version("leash")
    except PackageNotFoundError:
        return ""


def client_of(ctx: Context) -> str | None:
    """The MCP client's `name version` from its initialize call, when it is plain text."""
    params = ctx.session.client_params
    info = params.client_info if params is not None else None
    return client_label(info.name, info.version) if info is not None else None


def _tool(spec: tools.ToolSpec) -> types.Tool:
    return types.Tool(
        name=spec.name,
        title=spec.title,
        description=spec.description,
        input_schema=spec.input_schema(),
        annotations=types.ToolAnnotations(
            title=spec.title,
            read_only_hint=spec.read_only,
            destructive_hint=spec.name == "release_access",
            open_world_hint=True,
        ),
    )


def _result(text: str, data: dict[str, Any] | None = None, *, error: bool = False) -> Any:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content=data,
        is_error=error,
    )


async def _list_resources(ctx: Context, params: Any) -> types.ListResourcesResult:
    return types.ListResourcesResult(
        resources=[
            types.Resource(
                uri=IDENTITY_URI,
                name="identity",
                title="This agent's identity",
                description="Name, cloud, account, owner, backup owner and team.",
                mime_type="application/json",
            ),
            types.Resource(
                uri=GRANTS_URI,
                name="grants",
                title="This agent's live grants",
                description="Live grants with their expiry, and pending requests.",
                mime_type="application/json",
            ),
        ]
    )


def build_server(desk_of: DeskOf, *, version: str = "") -> Server[Any]:
    """Leash's MCP server: five tools and two resources, each call served by `desk_of`."""

    async def list_tools(ctx: Context, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[_tool(spec) for spec in tools.TOOLS])

    async def call_tool(ctx: Context, params: types.CallToolRequestParams) -> Any:
        try:
            desk = await desk_of(ctx, client_of(ctx))
            answer = await calls.call(params.name, params.arguments, desk)
        except LeashError as error:
            return _result(str(error), error=True)
        return _result(answer.text, answer.data)

    async def read_resource(ctx: Context, params: types.ReadResourceRequestParams) -> Any:
        if str(params.uri) not in (IDENTITY_URI, GRANTS_URI):
            raise LeashError(f"There is no resource '{str(params.uri)[:80]}'.")
        me = await (await desk_of(ctx, client_of(ctx))).me()
        if str(params.uri) == IDENTITY_URI:
            body: dict[str, Any] = {**me["identity"], "summary": answers.identity_text(me)}
        else:
            body = {"grants": me["grants"], "pending": me["pending"]}
        return types.ReadResourceResult(
            contents=[
                types.TextResourceContents(
                    uri=str(params.uri), mime_type="application/json", text=json.dumps(body)
                )
            ]
        )

    return Server(
        "leash",
        version=version,
        title="Leash",
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=_list_resources,
        on_read_resource=read_resource,
    )
