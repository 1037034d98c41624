"""The Slack and Teams worlds of tests/bot/surfaces, on SQLite, for the hostile tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bot.surfaces.chat_fixtures import chat, surface
from tests.bot.surfaces.conftest import client, slack_api, slack_leash, slack_rules
from tests.bot.surfaces.teams_world import connector, teams_client, teams_leash, teams_rules


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: these tests check what reaches the store, not the store itself."""
    return f"sqlite+aiosqlite:///{tmp_path / 'leash.db'}"


__all__ = [
    "chat",
    "client",
    "connector",
    "slack_api",
    "slack_leash",
    "slack_rules",
    "surface",
    "teams_client",
    "teams_leash",
    "teams_rules",
]
