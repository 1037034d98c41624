"""The Slack app manifest agrees with how Leash is served and asks for no more than it uses."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from slack_sdk.web.async_client import AsyncWebClient

ROOT = Path(__file__).resolve().parents[1]
SLACK_DIR = ROOT / "manifests" / "slack"
MANIFEST = SLACK_DIR / "manifest.yaml"
README = SLACK_DIR / "README.md"

PLACEHOLDER_URL = "https://leash.example.com/slack/events"
EVENTS_PATH = "/slack/events"

# Every Slack Web API method Leash may call through slack_sdk's AsyncWebClient (its Python
# name), and the bot scopes Slack requires for it, from Slack's method reference
# (docs.slack.dev/reference/methods/<method>). A call the source makes that is missing here
# fails test_every_web_api_call_has_its_scopes_known: look the method up and add it.
METHOD_SCOPES: dict[str, frozenset[str]] = {
    "chat_postMessage": frozenset({"chat:write"}),
    "chat_update": frozenset({"chat:write"}),
    "chat_postEphemeral": frozenset({"chat:write"}),
    "chat_delete": frozenset({"chat:write"}),
    # files_upload_v2 is slack_sdk's helper over files.getUploadURLExternal and
    # files.completeUploadExternal.
    "files_upload_v2": frozenset({"files:write"}),
    "files_getUploadURLExternal": frozenset({"files:write"}),
    "files_completeUploadExternal": frozenset({"files:write"}),
    # Leash reads the user's e-mail from users.info: the `email` field needs users:read.email.
    "users_info": frozenset({"users:read", "users:read.email"}),
    "users_lookupByEmail": frozenset({"users:read.email"}),
    "users_profile_get": frozenset({"users.profile:read"}),
    "conversations_open": frozenset({"im:write"}),
    "conversations_info": frozenset({"channels:read", "groups:read", "im:read", "mpim:read"}),
    "reactions_add": frozenset({"reactions:write"}),
    # Modals and the App Home need no scope; auth.test neither.
    "views_open": frozenset(),
    "views_push": frozenset(),
    "views_update": frozenset(),
    "views_publish": frozenset(),
    "auth_test": frozenset(),
}
# Scopes a manifest feature needs rather than a method: the slash command.
FEATURE_SCOPES = frozenset({"commands"})
# Slack grants users:read.email only together with users:read.
COMPANION_SCOPES: dict[str, str] = {"users:read.email": "users:read"}
# The dotted names the README's scope table cites for each Python method name.
README_METHODS: dict[str, tuple[str, ...]] = {
    "files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal"),
}
SOURCE_ROOTS = ("bot", "cloud", "scheduler")

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


def _web_api_methods() -> frozenset[str]:
    """The Python names of the Web API methods on AsyncWebClient (chat_postMessage, ...)."""
    names = {name for name in vars(AsyncWebClient) if not name.startswith("_")}
    return frozenset(names | {"api_call"})


@cache
def web_api_calls() -> dict[str, tuple[str, ...]]:
    """Every Web API method the source calls, with where: `<anything>.chat_postMessage(...)`."""
    methods = _web_api_methods()
    found: dict[str, list[str]] = {}
    for root in SOURCE_ROOTS:
        for path in sorted((ROOT / root).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in methods
                ):
                    where = f"{path.relative_to(ROOT)}:{node.lineno}"
                    found.setdefault(node.func.attr, []).append(where)
    return {method: tuple(places) for method, places in found.items()}


def bot_scopes() -> list[str]:
    scopes = section("oauth_config", "scopes")
    assert set(scopes) == {"bot"}, "Leash uses only a bot token: no user scopes"
    bot = scopes["bot"]
    assert isinstance(bot, list)
    return [str(scope) for scope in bot]


def needed_scopes() -> set[str]:
    needed = set(FEATURE_SCOPES)
    for method in web_api_calls():
        needed |= METHOD_SCOPES.get(method, frozenset())
    needed |= {COMPANION_SCOPES[scope] for scope in needed if scope in COMPANION_SCOPES}
    return needed


def test_the_scan_finds_leash_s_web_api_calls() -> None:
    calls = web_api_calls()
    # The scan works: Leash posts its cards and reads the people it names.
    assert {"chat_postMessage", "chat_update", "users_info"} <= set(calls), calls
    assert all(
        place.startswith("bot/surfaces/slack/") for places in calls.values() for place in places
    )


def test_every_web_api_call_has_its_scopes_known() -> None:
    calls = web_api_calls()
    assert "api_call" not in calls, (
        f"api_call hides the method from this check: {calls['api_call']}"
    )
    unknown = {method: places for method, places in calls.items() if method not in METHOD_SCOPES}
    assert not unknown, f"add these methods and their scopes to METHOD_SCOPES: {unknown}"


def test_bot_scopes_are_exactly_the_ones_leash_uses() -> None:
    bot = bot_scopes()
    assert len(bot) == len(set(bot)), "a bot scope is listed twice"
    missing = needed_scopes() - set(bot)
    assert not missing, f"the code calls methods needing {sorted(missing)}: add them"
    unused = set(bot) - needed_scopes()
    assert not unused, f"no call needs {sorted(unused)}: remove them"
    # Issue 20: im:write was asked for conversations.open, which Leash never calls.
    assert "im:write" not in bot
    assert "chat:write.public" not in bot


@pytest.mark.parametrize("scope", sorted(needed_scopes()))
def test_readme_explains_every_scope(scope: str) -> None:
    rows = [line for line in README.read_text().splitlines() if line.startswith(f"| `{scope}` |")]
    assert len(rows) == 1, f"README.md needs one table row for {scope}"
    (row,) = rows
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert len(cells) == 3, f"{scope}: a row is | scope | methods | why Leash needs it |"
    assert all(cells), f"{scope}: a cell of its row is empty"
    for method in web_api_calls():
        if scope in METHOD_SCOPES.get(method, frozenset()):
            for dotted in README_METHODS.get(method, (method.replace("_", ".", 1),)):
                assert f"`{dotted}`" in cells[1], f"{scope}'s row does not name `{dotted}`"


def test_readme_lists_no_scope_the_manifest_does_not_ask_for() -> None:
    rows = re.findall(r"^\| `([a-z.:_]+)` \|", README.read_text(), re.MULTILINE)
    scopes = [row for row in rows if ":" in row or row == "commands"]
    assert sorted(scopes) == sorted(bot_scopes())


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
