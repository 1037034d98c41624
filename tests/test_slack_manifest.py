"""The Slack app manifest agrees with how Leash is served and asks for no more than it uses."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SLACK_DIR = ROOT / "manifests" / "slack"
MANIFEST = SLACK_DIR / "manifest.yaml"
README = SLACK_DIR / "README.md"

PLACEHOLDER_URL = "https://leash.example.com/slack/events"
EVENTS_PATH = "/slack/events"

# Every bot scope, and the Web API methods / features that need it. Nothing else: views.open,
# views.update, views.push, views.publish, interactivity and the app_home_opened event need no
# scope, and chat:write.public is left out on purpose (the bot is invited to the approvals
# channel instead).
EXPECTED_BOT_SCOPES: dict[str, str] = {
    "chat:write": "chat.postMessage (DMs, approvals channel), chat.update, chat.postEphemeral",
    "commands": "the /leash slash command",
    "files:write": "files.getUploadURLExternal and files.completeUploadExternal (files_upload_v2)",
    "im:write": "conversations.open, to open a DM with a user",
    "users:read": "users.info on the clicking user; Slack requires it with users:read.email",
    "users:read.email": "users.lookupByEmail for owners registered by e-mail; users.info email",
}

Document = dict[str, Any]


@cache
def manifest() -> Document:
    loaded = yaml.safe_load(MANIFEST.read_text())
    assert isinstance(loaded, dict), "the manifest is not a YAML mapping"
    return loaded


def section(*keys: str) -> Document:
    node: Any = manifest()
    for key in keys:
        assert isinstance(node, dict), f"{key}'s parent is not a mapping"
        assert key in node, f"manifest has no {'.'.join(keys)}"
        node = node[key]
    assert isinstance(node, dict), f"{'.'.join(keys)} is not a mapping"
    return node


def slash_command() -> Document:
    commands = section("features")["slash_commands"]
    assert isinstance(commands, list)
    assert len(commands) == 1, "Leash has exactly one slash command"
    command = commands[0]
    assert isinstance(command, dict)
    return command


def all_urls() -> dict[str, str]:
    interactivity = section("settings", "interactivity")
    return {
        "slash command url": slash_command()["url"],
        "event_subscriptions.request_url": section("settings", "event_subscriptions")[
            "request_url"
        ],
        "interactivity.request_url": interactivity["request_url"],
        "interactivity.message_menu_options_url": interactivity["message_menu_options_url"],
    }


def test_manifest_parses_as_a_v1_app_manifest() -> None:
    doc = manifest()
    assert doc["_metadata"] == {"major_version": 1, "minor_version": 1}
    assert set(doc) == {"_metadata", "display_information", "features", "oauth_config", "settings"}
    info = section("display_information")
    assert info["name"] == "Leash"
    assert 1 <= len(info["description"]) <= 140
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", info["background_color"])
    assert section("features", "bot_user") == {"display_name": "leash", "always_online": False}


def test_slash_command_is_leash() -> None:
    command = slash_command()
    assert command["command"] == "/leash"
    assert command["description"] == (
        "Ask for, approve and revoke time-limited cloud permissions for AI agents"
    )
    assert command["usage_hint"] == "request <agent> <permission-set> for 30m because <reason>"
    # `owner set <agent> @alice` must reach Leash as <@U…|alice> so it can store the user id.
    assert command["should_escape"] is True


def test_every_url_is_the_one_slack_events_url() -> None:
    urls = all_urls()
    assert set(urls.values()) == {PLACEHOLDER_URL}, urls
    parts = urlsplit(PLACEHOLDER_URL)
    assert parts.scheme == "https"
    assert parts.path == EVENTS_PATH


def test_interactivity_is_on() -> None:
    assert section("settings", "interactivity")["is_enabled"] is True


def test_bot_scopes_are_exactly_the_ones_leash_uses() -> None:
    scopes = section("oauth_config", "scopes")
    assert set(scopes) == {"bot"}, "Leash uses only a bot token: no user scopes"
    bot = scopes["bot"]
    assert isinstance(bot, list)
    assert len(bot) == len(set(bot)), "a bot scope is listed twice"
    assert set(bot) == set(EXPECTED_BOT_SCOPES)
    assert "chat:write.public" not in bot


@pytest.mark.parametrize("scope", sorted(EXPECTED_BOT_SCOPES))
def test_readme_explains_every_scope(scope: str) -> None:
    rows = [line for line in README.read_text().splitlines() if line.startswith(f"| `{scope}` |")]
    assert len(rows) == 1, f"README.md needs one table row for {scope}"


def test_bot_events_are_only_app_home_opened() -> None:
    assert section("settings", "event_subscriptions")["bot_events"] == ["app_home_opened"]
    assert "user_events" not in section("settings", "event_subscriptions")


def test_app_home() -> None:
    assert section("features", "app_home") == {
        "home_tab_enabled": True,
        "messages_tab_enabled": True,
        # Leash does not handle message.im yet: nobody should be able to type to it.
        "messages_tab_read_only_enabled": True,
    }


def test_http_mode_not_socket_mode() -> None:
    settings = section("settings")
    assert settings["socket_mode_enabled"] is False
    assert settings["org_deploy_enabled"] is False
    assert settings["token_rotation_enabled"] is False
