"""Carrying out one tool call on an `AgentDesk`: validated arguments in, an `Answer` out.

Written once for both transports (see the package docstring); raises `LeashError` with the
sentence the chat surfaces would show. Nothing here imports the `mcp` SDK.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.surfaces.mcp import answers, tools
from bot.surfaces.mcp.answers import Answer
from bot.surfaces.mcp.desk import AgentDesk


def _now() -> datetime:
    return datetime.now(UTC)


async def call(
    name: str,
    arguments: dict[str, Any] | None,
    desk: AgentDesk,
    *,
    now: Callable[[], datetime] = _now,
) -> Answer:
    """Validate `arguments` for tool `name`, then ask the desk; refuses bad input first."""
    given = tools.parse(name, arguments)
    if isinstance(given, tools.RequestAccess):
        return answers.asked(await desk.ask(given.model_dump(exclude_defaults=True)))
    if isinstance(given, tools.WaitForDecision):
        request = await desk.request(given.request_id, wait=given.wait_seconds)
        cloud = None
        if request["state"] == "approved":
            cloud = (await desk.me())["identity"]["cloud"]
        return answers.decided(request, cloud=cloud, now=now())
    if isinstance(given, tools.ReleaseAccess):
        return answers.released(await desk.release(given.grant_id))
    if isinstance(given, tools.ExtendAccess):
        body = {"duration": given.duration, "reason": given.reason}
        return answers.asked(await desk.extend(given.grant_id, body))
    return answers.access(await desk.me())
