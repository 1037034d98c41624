"""The MCP surface: Leash's agent operations as Model Context Protocol tools and resources.

An agent runtime that speaks MCP (Claude, the OpenAI Agents SDK, LangGraph, ...) reaches the
same five operations the agent API offers (ask, wait, list, release, extend) as tools, and its
own identity and live grants as resources. Nothing is decided here: every tool calls an
`AgentDesk` (bot.surfaces.mcp.desk), which has two implementations with the same answers:

- `HttpDesk` (client.py), for `leash mcp` over stdio: a client of the agent API under /api/v1,
  carrying the agent's bearer token, so the process an agent runtime launches holds no
  database and no cloud credentials, only the token;
- the agent API's own `InProcessDesk` (bot.http.agent_desk), for the streamable HTTP transport
  `leash serve` mounts at /mcp (remote.py): the very code behind the agent API's handlers.

Either way the token is bound to one identity, the tier, separation of duties and the audit
trail are the lifecycle's, and requests are recorded with the origin `mcp` and the MCP client's
name and version (origin.py). The `mcp` SDK is imported only when the surface starts (never
while `leash serve` starts): this package's __init__ and origin.py import nothing of it.
"""
