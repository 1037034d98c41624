"""A Leash with Slack enabled against the wire-level fake Slack API, served over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request

from bot.app import Leash, build
from bot.config import Settings
from bot.domain.actors import Actor
from bot.domain.rules import Rules
from bot.domain.states import ActorKind
from bot.http.server import build_web_app
from bot.inventory.ownership import OwnerChange
from cloud.sandbox import Sandbox
from tests.conftest import make_rules
from tests.fakes.slack_api import FakeSlackApi, SlackCall
from tests.fakes.slack_signing import sign

SECRET = "test-signing-secret"
OWNER = "UOWNERA"
BACKUP = "UOWNERB"
DEV = "UDEV"
ADMIN = "UADMIN"
STRANGER = "USTRANGER"
OWNER_EMAIL = "alice@example.com"

SlackClient = TestClient[Request, Application]


@pytest.fixture
def slack_rules(request: pytest.FixtureRequest) -> Rules:
    """Rules with a Slack admin; parametrize indirectly with overrides."""
    return make_rules(**({"admins": [ADMIN]} | getattr(request, "param", {})))


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi() as fake:
        fake.add_user(OWNER, email=OWNER_EMAIL, name="alice")
        fake.add_user(BACKUP, email="bob@example.com", name="bob")
        fake.add_user(DEV, email="dev@example.com", name="dev")
        fake.add_user(ADMIN, email="secops@example.com", name="secops")
        fake.add_user(STRANGER, email="mallory@example.com", name="mallory")
        yield fake


@pytest.fixture
async def slack_leash(
    database_url: str, fresh_sandbox: Sandbox, slack_api: FakeSlackApi, slack_rules: Rules
) -> AsyncIterator[Leash]:
    settings = Settings(
        database_url=database_url,
        slack_bot_token="xoxb-test",
        slack_signing_secret=SECRET,
        slack_api_url=slack_api.base_url,
        slack_pace_seconds=0.05,  # pacing is the product's; the tests need not wait a second
    )
    app = build(settings, sandbox=fresh_sandbox, rules=slack_rules)
    assert app.slack is not None
    await app.start(scheduler=False)
    # The owner is registered by e-mail (resolved with users.lookupByEmail), the backup by id.
    await app.lifecycle.owners.set(
        "support-triage-agent",
        OwnerChange(OWNER_EMAIL, BACKUP, "support-bots"),
        actor=Actor(ADMIN, ActorKind.USER, "test"),
    )
    yield app
    await app.close()


@pytest.fixture
async def client(slack_leash: Leash) -> AsyncIterator[SlackClient]:
    app = build_web_app(slack_leash.lifecycle, max_body_bytes=1024 * 1024, slack=slack_leash.slack)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def post(
    client: SlackClient,
    built: tuple[bytes, str],
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    body: bytes | None = None,
) -> ClientResponse:
    """POST to /slack/events signed as Slack signs (optionally with a different body after)."""
    signed_body, content_type = built
    headers = sign(secret, signed_body, timestamp, content_type=content_type)
    return await client.post("/slack/events", data=body or signed_body, headers=headers)


def buttons(call_args: dict[str, Any]) -> list[dict[str, Any]]:
    """Every button element in a posted message's blocks."""
    return [
        element
        for block in call_args.get("blocks") or []
        if block.get("type") == "actions"
        for element in block["elements"]
    ]


def block_text(call_args: dict[str, Any]) -> str:
    return json.dumps(call_args.get("blocks") or [])


def is_request_card(call: SlackCall) -> bool:
    """A posted approval card (request, reminder or escalation), not another message."""
    return bool(buttons(call.args)) and "request r-" in str(call.args.get("text", ""))


# Teams: its fixtures live beside its helpers.
from tests.bot.surfaces.teams_world import (  # noqa: E402
    connector,
    teams_client,
    teams_leash,
    teams_rules,
)

__all__ = ["connector", "teams_client", "teams_leash", "teams_rules"]
