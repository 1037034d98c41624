"""With an app id, only requests signed by the Bot Framework for this bot get in (401 otherwise)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.app import Leash, build
from bot.config import ConfigError, Settings
from bot.domain.actors import Actor
from bot.domain.states import ActorKind, RequestState
from bot.http.server import build_web_app
from bot.inventory.ownership import OwnerChange
from bot.store.tables import AccessRequest
from cloud.sandbox import Sandbox
from tests.bot.surfaces.teams_world import (
    ADMIN,
    OWNER,
    TeamsClient,
    approve_click,
    pending_request,
    post,
)
from tests.conftest import make_rules
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.bot_framework_tokens import BotFrameworkIssuer
from tests.fakes.teams_activities import TENANT_ID, card_action, in_tenant

APP_ID = "6a3c1e7e-0d6f-4b8e-9a41-3c2b7f0e5d11"
OTHER_APP = "0b1d2c3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"


@pytest.fixture
def issuer() -> Iterator[BotFrameworkIssuer]:
    with BotFrameworkIssuer() as running:
        yield running


@pytest.fixture
async def secured(
    database_url: str,
    fresh_sandbox: Sandbox,
    issuer: BotFrameworkIssuer,
    connector: FakeBotConnector,
) -> AsyncIterator[tuple[Leash, TeamsClient, str]]:
    """A Leash whose Teams endpoint checks tokens against the fake issuer; a pending request."""
    settings = Settings(
        database_url=database_url,
        MICROSOFT_APP_ID=APP_ID,
        MICROSOFT_APP_PASSWORD="not-used-by-these-tests",
        MICROSOFT_APP_TYPE="SingleTenant",
        MICROSOFT_APP_TENANT_ID=TENANT_ID,
        teams_openid_metadata_url=issuer.metadata_url,
        teams_token_issuer=issuer.issuer,
    )
    leash = build(settings, sandbox=fresh_sandbox, rules=make_rules(admins=[ADMIN.email]))
    await leash.start(scheduler=False, discover=False)
    await leash.discover()
    admin = Actor(ADMIN.email, ActorKind.USER, "test")
    # The owner by Entra object id: with authentication on, the roster (and so the e-mail)
    # needs a token from login.microsoftonline.com, which is out of reach here.
    await leash.lifecycle.owners.set(
        "support-triage-agent", OwnerChange(OWNER.aad_object_id), actor=admin
    )
    request_id = await pending_request(leash)
    app = build_web_app(leash.lifecycle, max_body_bytes=64 * 1024, teams=leash.teams)
    async with TestClient(TestServer(app)) as client:
        yield leash, client, request_id
    await leash.close()


def _refresh(connector: FakeBotConnector, request_id: str) -> dict[str, Any]:
    return card_action(
        "refresh",
        {"request": request_id},
        user=OWNER,
        service_url=connector.service_url,
        conversation_id=OWNER.personal_conversation_id,
    )


async def test_a_token_from_the_bot_framework_for_this_bot_gets_in(
    secured: tuple[Leash, TeamsClient, str],
    issuer: BotFrameworkIssuer,
    connector: FakeBotConnector,
) -> None:
    _, client, request_id = secured
    token = issuer.token(audience=APP_ID, service_url=connector.service_url)
    response = await post(client, _refresh(connector, request_id), authorization=f"Bearer {token}")
    assert response.status == 200
    body = await response.json()
    assert f"Request {request_id}" in str(body["value"])  # the card, redrawn as it stands


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda i, url: None, id="no header"),
        pytest.param(lambda i, url: "Bearer not-a-jwt", id="garbage"),
        pytest.param(
            lambda i, url: f"Bearer {i.token(audience=OTHER_APP, service_url=url)}",
            id="wrong audience",
        ),
        pytest.param(
            lambda i, url: (
                "Bearer " + i.token(audience=APP_ID, service_url=url, issuer="https://evil.example")
            ),
            id="wrong issuer",
        ),
        pytest.param(
            lambda i, url: (
                "Bearer " + i.token(audience=APP_ID, service_url="https://evil.example/")
            ),
            id="other serviceUrl",
        ),
        pytest.param(
            lambda i, url: (
                "Bearer " + i.token(audience=APP_ID, service_url=url, signed_by_stranger=True)
            ),
            id="not signed by the Bot Framework",
        ),
        pytest.param(
            lambda i, url: "Bearer " + i.token(audience=APP_ID, service_url=url, expires_in=-3600),
            id="expired",
        ),
        pytest.param(
            lambda i, url: "Bearer " + i.token(audience=APP_ID, service_url=url, without={"exp"}),
            id="no expiry",
        ),
        pytest.param(
            lambda i, url: (
                "Bearer " + i.token(audience=APP_ID, service_url=url, expires_in=400 * 86400)
            ),
            id="valid for a year",
        ),
        pytest.param(
            lambda i, url: (
                "Bearer "
                + i.token(audience=APP_ID, service_url=url, extra_claims={"exp": "tomorrow"})
            ),
            id="expiry not a number",
        ),
    ],
)
async def test_anything_else_is_401_and_changes_nothing(
    secured: tuple[Leash, TeamsClient, str],
    issuer: BotFrameworkIssuer,
    connector: FakeBotConnector,
    forge: Any,
) -> None:
    leash, client, request_id = secured
    approve = approve_click(connector, request_id)
    response = await post(client, approve, authorization=forge(issuer, connector.service_url))
    assert response.status == 401
    assert (await response.json())["error"] == "unauthorized"
    async with leash.context.sessions() as session:
        request = (await session.exec(select(AccessRequest))).one()
    assert request.state == RequestState.PENDING
    assert connector.calls_to("get_member") == []  # not even the roster was asked


async def test_a_good_token_from_another_tenant_is_403_and_changes_nothing(
    secured: tuple[Leash, TeamsClient, str],
    issuer: BotFrameworkIssuer,
    connector: FakeBotConnector,
) -> None:
    leash, client, request_id = secured
    assert leash.teams is not None
    await leash.teams.drain()  # the approval card's delivery is done
    calls = len(connector.calls)
    approve = approve_click(connector, request_id)
    other = "0e4f7c2a-9b1d-4e6f-8a3c-5d7b9e1f2a4c"
    foreign = in_tenant(approve, conversation=other, channel_data=other)
    response = await post(
        client,
        foreign,
        authorization=issuer.authorization(audience=APP_ID, service_url=connector.service_url),
    )
    assert response.status == 403
    # Authentication comes first: a token without expiry is 401 whatever the tenant.
    token = issuer.token(audience=APP_ID, service_url=connector.service_url, without={"exp"})
    response = await post(client, foreign, authorization=f"Bearer {token}")
    assert response.status == 401
    async with leash.context.sessions() as session:
        request = (await session.exec(select(AccessRequest))).one()
    assert request.state == RequestState.PENDING
    assert connector.calls[calls:] == []


def test_teams_without_an_app_id_refuses_to_start_against_a_real_cloud() -> None:
    settings = Settings(teams=True, cloud="aws", aws_use_organizations=False)
    with pytest.raises(ConfigError, match="MICROSOFT_APP_ID: Teams is enabled"):
        build(settings, rules=make_rules())


def test_an_app_id_without_its_password_is_refused() -> None:
    settings = Settings(MICROSOFT_APP_ID=APP_ID)
    with pytest.raises(ConfigError, match="MICROSOFT_APP_PASSWORD"):
        build(settings, sandbox=False, rules=make_rules())
