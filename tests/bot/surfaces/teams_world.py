"""A Leash with Teams enabled against the fake Bot Connector, and helpers to talk to it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request

from bot.access.drafting import RequestInput
from bot.app import Leash, build
from bot.config import Settings
from bot.domain.actors import Actor
from bot.domain.rules import Rules
from bot.domain.states import ActorKind
from bot.http.server import build_web_app
from bot.inventory.ownership import OwnerChange
from cloud.sandbox import Sandbox
from tests.conftest import make_rules
from tests.fakes.bot_connector import ADAPTIVE_CARD, ConnectorCall, FakeBotConnector
from tests.fakes.teams_activities import (
    BOT_ID,
    TENANT_ID,
    TeamsUser,
    card_action,
    conversation_update,
    message,
)
from tests.schemas.validation import card_problems

TeamsClient = TestClient[Request, Application]

OWNER = TeamsUser.named("alice", email="alice@example.com", name="Alice Owner")
BACKUP = TeamsUser.named("bob", email="bob@example.com", name="Bob Backup")
DEV = TeamsUser.named("dev", email="dev@example.com", name="Dev Eloper")
ADMIN = TeamsUser.named("secops", email="secops@example.com", name="Sec Ops")
STRANGER = TeamsUser.named("mallory", email="mallory@example.com", name="Mallory")
EVERYONE = (OWNER, BACKUP, DEV, ADMIN, STRANGER)


@pytest.fixture
def teams_rules(request: pytest.FixtureRequest) -> Rules:
    """Rules with a Teams admin (by e-mail); parametrize indirectly with overrides."""
    return make_rules(**({"admins": [ADMIN.email]} | getattr(request, "param", {})))


@pytest.fixture
async def connector() -> AsyncIterator[FakeBotConnector]:
    """The fake Bot Connector; every card Leash posts or updates through it must be a valid
    Adaptive Card of the version Leash declares (Microsoft's schema, tests/schemas/)."""
    async with FakeBotConnector(card_check=card_problems) as fake:
        for user in EVERYONE:
            fake.add_member(user)
        yield fake
        # After Leash closed (teams_leash depends on this fixture): its last cards are in.
        assert not fake.invalid_cards, "\n".join(
            f"{kind}: {problems}\n  {json.dumps(card)[:2000]}"
            for kind, problems, card in fake.invalid_cards
        )


@pytest.fixture
async def teams_leash(
    request: pytest.FixtureRequest,
    database_url: str,
    fresh_sandbox: Sandbox,
    teams_rules: Rules,
    connector: FakeBotConnector,
) -> AsyncIterator[Leash]:
    """Leash with Teams (auth off) serving the fakes' tenant; it closes, draining its
    deliveries, before the fake stops. Parametrize indirectly with Settings overrides."""
    settings = Settings(
        **{
            "database_url": database_url,
            "teams": True,
            "teams_retry_seconds": 0.01,
            "MICROSOFT_APP_TYPE": "SingleTenant",
            "MICROSOFT_APP_TENANT_ID": TENANT_ID,
        }
        | getattr(request, "param", {})
    )
    app = build(settings, sandbox=fresh_sandbox, rules=teams_rules)
    assert app.teams is not None
    await app.start(scheduler=False)
    await app.lifecycle.owners.set(
        "support-triage-agent",
        OwnerChange(OWNER.email, BACKUP.email, "support-bots"),
        actor=Actor(ADMIN.email, ActorKind.USER, "test"),
    )
    yield app
    await app.close()


@pytest.fixture
async def teams_client(teams_leash: Leash) -> AsyncIterator[TeamsClient]:
    app = build_web_app(teams_leash.lifecycle, max_body_bytes=1024 * 1024, teams=teams_leash.teams)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def post(
    client: TeamsClient, activity: Mapping[str, Any], *, authorization: str | None = None
) -> ClientResponse:
    """POST an activity to /api/messages as the Bot Framework does."""
    headers = {"Authorization": authorization} if authorization else {}
    response = await client.post("/api/messages", json=dict(activity), headers=headers)
    await check_invoke_card(response)
    return response


async def check_invoke_card(response: ClientResponse) -> None:
    """An invoke answered with a card (Action.Execute, refresh) must be a valid Adaptive Card
    of the declared version; the body stays readable by the caller."""
    if response.status != 200 or response.content_type != "application/json":
        return
    answer = json.loads(await response.read() or b"null")
    if isinstance(answer, dict) and answer.get("type") == ADAPTIVE_CARD:
        card = answer.get("value")
        assert isinstance(card, dict), answer
        problems = card_problems(card)
        assert not problems, f"invalid card in an invoke answer: {problems}\n  {json.dumps(card)}"


async def install(client: TeamsClient, fake: FakeBotConnector, *users: TeamsUser) -> None:
    """Install the app in each user's personal scope (Teams posts a conversationUpdate)."""
    for user in users:
        response = await post(
            client,
            conversation_update(
                members_added=[BOT_ID],
                service_url=fake.service_url,
                conversation_id=user.personal_conversation_id,
                user=user,
            ),
        )
        assert response.status in (200, 201), await response.text()
    await fake.wait_for("send", count=len(users))  # each got the welcome card


async def say(
    client: TeamsClient, fake: FakeBotConnector, user: TeamsUser, text: str
) -> ConnectorCall:
    """Type a command in the user's personal chat; return Leash's reply."""
    before = len(fake.calls_to("reply"))
    activity = message(text, user=user, service_url=fake.service_url)
    response = await post(client, activity)
    assert response.status in (200, 201), await response.text()
    replies = await fake.wait_for("reply", count=before + 1)
    return replies[before]


def card_text(call: ConnectorCall) -> str:
    """Every text in a call's cards (headline, facts, inputs), for assertions."""
    return json.dumps(FakeBotConnector.cards(call))


def actions_of(card: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every action of a card: its own, and those in its sections' action sets."""
    found = list(card.get("actions") or [])
    for element in card.get("body") or []:
        for item in element.get("items") or []:
            if item.get("type") == "ActionSet":
                found.extend(item["actions"])
    return found


async def pending_request(leash: Leash) -> str:
    """Have DEV ask for s3-read on support-triage-agent; return the request's id."""
    request = await leash.lifecycle.requests.submit(
        RequestInput(
            identity="support-triage-agent",
            duration=timedelta(minutes=10),
            reason="triage",
            permission_set="s3-read",
        ),
        actor=Actor(DEV.email, ActorKind.USER, "test"),
    )
    return request.id


def approve_click(fake: FakeBotConnector, request_id: str) -> dict[str, Any]:
    """The invoke Teams posts when OWNER presses Approve on a request's card."""
    return card_action(
        "approve",
        {"command": f"approve {request_id}", "request": request_id},
        user=OWNER,
        service_url=fake.service_url,
        conversation_id=OWNER.personal_conversation_id,
    )
