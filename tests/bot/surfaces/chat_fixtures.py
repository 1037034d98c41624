"""The `surface` and `chat` fixtures: one chat driver per surface (console, Slack, Teams)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.sandbox import Sandbox
from tests.bot.surfaces.chat_drivers import Chat, ConsoleChat, SlackChat, TeamsChat


@pytest.fixture(params=["console", "slack", "teams"])
def surface(request: pytest.FixtureRequest, tmp_path: Path) -> Chat:
    """Build the Leash of one surface, pulling only that surface's fixtures."""
    sandbox: Sandbox = request.getfixturevalue("fresh_sandbox")
    if request.param == "console":
        return ConsoleChat(request.getfixturevalue("leash"), sandbox, tmp_path / "attached")
    if request.param == "slack":
        return SlackChat(
            request.getfixturevalue("slack_leash"),
            sandbox,
            request.getfixturevalue("client"),
            request.getfixturevalue("slack_api"),
        )
    return TeamsChat(
        request.getfixturevalue("teams_leash"),
        sandbox,
        request.getfixturevalue("teams_client"),
        request.getfixturevalue("connector"),
    )


@pytest.fixture
async def chat(surface: Chat) -> Chat:
    """Return the surface's driver, with every role able to hear from Leash."""
    await surface.start()
    return surface
