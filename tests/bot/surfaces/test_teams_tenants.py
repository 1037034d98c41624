"""Teams serves only its own tenant(s): any other activity is refused (403) before it runs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import SQLModel, func, select

from bot.app import Leash, build
from bot.config import ConfigError, Settings, load_settings
from bot.store.tables import Grant, Ownership
from cloud.sandbox import Sandbox
from tests.bot.surfaces.teams_world import (
    OWNER,
    TeamsClient,
    approve_click,
    pending_request,
    post,
)
from tests.conftest import make_rules
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.teams_activities import (
    BOT_ID,
    TENANT_ID,
    JsonDict,
    conversation_update,
    in_tenant,
    installation_update,
    message,
)
from tests.hostile.world import cloud_writes, rows

OTHER_TENANT = "0e4f7c2a-9b1d-4e6f-8a3c-5d7b9e1f2a4c"
SECOND_TENANT = "5a6b7c8d-1e2f-4a3b-9c4d-6e7f8a9b0c1d"

Activity = Callable[[FakeBotConnector, str], JsonDict]


def _say(text: str) -> Activity:
    return lambda fake, _: message(text, user=OWNER, service_url=fake.service_url)


def _bot_added(fake: FakeBotConnector, _: str) -> JsonDict:
    return conversation_update(
        members_added=[BOT_ID],
        service_url=fake.service_url,
        conversation_id=OWNER.personal_conversation_id,
        user=OWNER,
    )


def _installed(fake: FakeBotConnector, _: str) -> JsonDict:
    return installation_update(
        user=OWNER, service_url=fake.service_url, conversation_id=OWNER.personal_conversation_id
    )


# Each would change something, or at least be answered, if it ran.
ACTIVITIES: dict[str, Activity] = {
    "owner claim": _say("owner claim support-triage-agent"),
    "token issue": _say("token issue support-triage-agent"),
    "approve card action": approve_click,
    "conversationUpdate (install)": _bot_added,
    "installationUpdate": _installed,
}

REFUSED = [
    pytest.param((OTHER_TENANT, OTHER_TENANT), id="another tenant"),
    pytest.param((OTHER_TENANT, TENANT_ID), id="another tenant in conversation.tenantId only"),
    pytest.param((TENANT_ID, OTHER_TENANT), id="another tenant in channelData only"),
    pytest.param((None, None), id="no tenant"),
    pytest.param((None, TENANT_ID), id="no conversation.tenantId"),
    pytest.param((TENANT_ID, None), id="no channelData.tenant"),
    pytest.param(("contoso.onmicrosoft.com", "contoso.onmicrosoft.com"), id="not a GUID"),
]


async def _stored(leash: Leash) -> dict[str, Any]:
    """Every table's row count, and who owns what: what a refused activity must not change."""
    async with leash.context.sessions() as session:
        counts: dict[str, Any] = {
            table.name: (await session.exec(select(func.count()).select_from(table))).one()
            for table in SQLModel.metadata.sorted_tables
        }
        owners = (await session.exec(select(Ownership))).all()
        counts["owners"] = sorted((o.identity_id, o.primary_owner, o.backup_owner) for o in owners)
    return counts


# How the bot is registered (teams_leash overrides); each refuses the REFUSED table.
SINGLE = {"MICROSOFT_APP_TYPE": "SingleTenant", "MICROSOFT_APP_TENANT_ID": TENANT_ID}
MULTI_LISTED = {"MICROSOFT_APP_TYPE": "MultiTenant", "teams_tenants": [SECOND_TENANT, TENANT_ID]}
MULTI_ANY = {"MICROSOFT_APP_TYPE": "MultiTenant", "MICROSOFT_APP_TENANT_ID": None}
BOTS = {"single tenant": SINGLE, "multi-tenant, listed": MULTI_LISTED, "multi-tenant": MULTI_ANY}


@pytest.mark.parametrize(
    ("teams_leash", "tenants"),
    [
        pytest.param(settings, case.values[0], id=f"{bot}: {case.id}")
        for bot, settings in BOTS.items()
        for case in REFUSED
        # A multi-tenant bot without a list serves any one tenant that both fields name.
        if not (settings is MULTI_ANY and case.id == "another tenant")
    ],
    indirect=["teams_leash"],
)
async def test_an_activity_from_a_tenant_not_served_is_403_and_nothing_happens(
    teams_leash: Leash,
    teams_client: TeamsClient,
    connector: FakeBotConnector,
    fresh_sandbox: Sandbox,
    tenants: tuple[str | None, str | None],
) -> None:
    assert teams_leash.teams is not None
    request_id = await pending_request(teams_leash)
    await teams_leash.teams.drain()  # the approval card is out
    before, stored = await rows(teams_leash), await _stored(teams_leash)
    calls, moto = len(connector.calls), len(fresh_sandbox.moto.calls())
    conversation, channel_data = tenants
    for name, make in ACTIVITIES.items():
        activity = in_tenant(
            make(connector, request_id), conversation=conversation, channel_data=channel_data
        )
        response = await post(teams_client, activity)
        assert response.status == 403, (name, await response.text())
        assert (await response.json())["error"] == "forbidden"
    await teams_leash.teams.drain()
    assert connector.calls[calls:] == []  # no answer, no welcome, not even the roster asked
    assert await rows(teams_leash) == before
    assert await _stored(teams_leash) == stored  # no ChatContact, token, ownership, audit
    assert cloud_writes(fresh_sandbox, since=moto) == []


async def test_the_refusal_is_logged_with_the_tenant_not_the_body(
    teams_leash: Leash,
    teams_client: TeamsClient,
    connector: FakeBotConnector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    activity = in_tenant(
        message("token issue support-triage-agent", user=OWNER, service_url=connector.service_url),
        conversation=OTHER_TENANT,
        channel_data=OTHER_TENANT,
    )
    with caplog.at_level(logging.WARNING, logger="leash.teams"):
        assert (await post(teams_client, activity)).status == 403
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
    assert len(logged) == 1, logged
    assert OTHER_TENANT in logged[0]
    assert "a tenant this bot does not serve" in logged[0]
    assert "token issue" not in logged[0]
    assert OWNER.teams_id not in logged[0]


@pytest.mark.parametrize(
    ("teams_leash", "tenant"),
    [
        pytest.param(SINGLE, TENANT_ID.upper(), id="single tenant: its tenant, upper case"),
        pytest.param(MULTI_LISTED, SECOND_TENANT.upper(), id="multi-tenant, listed: second"),
        pytest.param(MULTI_LISTED, TENANT_ID, id="multi-tenant, listed: first"),
        pytest.param(MULTI_ANY, OTHER_TENANT, id="multi-tenant: any tenant"),
    ],
    indirect=["teams_leash"],
)
async def test_an_activity_from_a_served_tenant_runs(
    teams_leash: Leash, teams_client: TeamsClient, connector: FakeBotConnector, tenant: str
) -> None:
    request_id = await pending_request(teams_leash)
    said = in_tenant(
        _say("token issue support-triage-agent")(connector, request_id),
        conversation=tenant,
        channel_data=tenant,
    )
    response = await post(teams_client, said)
    assert response.status == 201, await response.text()
    replies = await connector.wait_for("reply")
    assert "API token for support-triage-agent" in str(replies[-1].body)
    approve = in_tenant(
        approve_click(connector, request_id), conversation=tenant, channel_data=tenant
    )
    response = await post(teams_client, approve)
    assert response.status == 200, await response.text()
    assert f"Approved {request_id}" in str((await response.json())["value"])
    async with teams_leash.context.sessions() as session:
        assert (await session.exec(select(func.count()).select_from(Grant))).one() == 1


def test_a_multi_tenant_bot_without_a_list_warns_at_start_up(
    tmp_path: Path, fresh_sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'leash.db'}"  # never opened
    with caplog.at_level(logging.WARNING, logger="leash.teams"):
        build(
            Settings(database_url=database_url, teams=True),
            sandbox=fresh_sandbox,
            rules=make_rules(),
        )
    assert any("LEASH_TEAMS_TENANTS" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="leash.teams"):
        build(
            Settings(database_url=database_url, teams=True, teams_tenants=TENANT_ID),
            sandbox=fresh_sandbox,
            rules=make_rules(),
        )
    assert not any("LEASH_TEAMS_TENANTS" in r.getMessage() for r in caplog.records)


def test_leash_teams_tenants_is_a_list_of_tenant_guids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEASH_TEAMS_TENANTS", f" {TENANT_ID.upper()}, {SECOND_TENANT},{TENANT_ID}")
    assert load_settings().teams_tenants == [TENANT_ID, SECOND_TENANT]
    monkeypatch.setenv("LEASH_TEAMS_TENANTS", f"{TENANT_ID},contoso.onmicrosoft.com")
    with pytest.raises(ConfigError, match="LEASH_TEAMS_TENANTS: not Entra tenant ids"):
        load_settings()


def test_a_single_tenant_bot_serves_only_its_own_tenant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROSOFT_APP_TYPE", "SingleTenant")
    monkeypatch.setenv("MICROSOFT_APP_TENANT_ID", TENANT_ID)
    monkeypatch.setenv("LEASH_TEAMS_TENANTS", TENANT_ID.upper())
    assert load_settings().teams_tenants == [TENANT_ID]  # the same tenant: harmless
    monkeypatch.setenv("LEASH_TEAMS_TENANTS", f"{TENANT_ID},{SECOND_TENANT}")
    with pytest.raises(ConfigError, match="LEASH_TEAMS_TENANTS: a SingleTenant bot serves only"):
        load_settings()
