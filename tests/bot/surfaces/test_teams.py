"""Teams, end to end: real Bot Framework activities to /api/messages, a fake Bot Connector,
the moto server behind the sandbox."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlmodel import col, select

from bot.app import Leash
from bot.domain.states import GrantState, RequestState
from bot.store.tables import AccessRequest, AuditEvent, Grant
from cloud.sandbox import Sandbox
from tests.bot.surfaces.teams_world import (
    BACKUP,
    DEV,
    OWNER,
    STRANGER,
    TeamsClient,
    actions_of,
    card_text,
    install,
    post,
    say,
)
from tests.e2e.helpers import REQUEST_ID, inline_policy
from tests.fakes.bot_connector import ConnectorCall, FakeBotConnector
from tests.fakes.teams_activities import TeamsUser, card_action

CARD = "application/vnd.microsoft.card.adaptive"


def card_of(call: ConnectorCall) -> dict[str, Any]:
    cards = FakeBotConnector.cards(call)
    assert len(cards) == 1, call
    return cards[0]


def button(card: dict[str, Any], title: str) -> dict[str, Any]:
    """The Action.Execute behind a button (inside its ShowCard when it asks for input)."""
    found = next(a for a in actions_of(card) if a["title"] == title)
    if found["type"] == "Action.ShowCard":
        found = found["card"]["actions"][0]
    assert found["type"] == "Action.Execute"
    return found


async def press(
    client: TeamsClient,
    fake: FakeBotConnector,
    card: dict[str, Any],
    title: str,
    *,
    user: TeamsUser,
    inputs: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Press a card's button as `user` (Teams posts an adaptiveCard/action invoke)."""
    action = button(card, title)
    activity = card_action(
        action["verb"],
        {**action["data"], **(inputs or {})},
        user=user,
        service_url=fake.service_url,
        conversation_id=user.personal_conversation_id,
    )
    response = await post(client, activity)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def request_card(
    client: TeamsClient, fake: FakeBotConnector, *, to: TeamsUser = OWNER
) -> tuple[str, ConnectorCall]:
    said = await say(
        client, fake, DEV, "request support-triage-agent s3-read for 10m because triage"
    )
    found = REQUEST_ID.search(card_text(said))
    assert found, card_text(said)
    cards = await fake.wait_for(
        "send",
        where=lambda c: (
            c.conversation_id == to.personal_conversation_id
            and found.group(1) in card_text(c)
            and bool(actions_of(card_of(c)))
        ),
    )
    return found.group(1), cards[0]


async def test_request_approved_on_the_card_grant_applied_cards_replaced_then_revoked(
    teams_leash: Leash,
    teams_client: TeamsClient,
    connector: FakeBotConnector,
    fresh_sandbox: Sandbox,
) -> None:
    await install(teams_client, connector, OWNER, DEV)
    request_id, posted = await request_card(teams_client, connector)
    card = card_of(posted)
    assert [a["title"] for a in actions_of(card)] == ["Approve", "Deny"]
    assert "alice@example.com owns support-triage-agent" in card_text(posted)
    assert card["refresh"]["action"]["data"] == {"request": request_id}
    assert card["refresh"]["userIds"] == [OWNER.teams_id]  # redrawn for her when she opens it

    answered = await press(teams_client, connector, card, "Approve", user=OWNER)
    assert answered["type"] == CARD
    assert f"Approved {request_id}: grant g-" in str(answered["value"])
    assert "approved by alice@example.com" in str(answered["value"])
    assert actions_of(answered["value"]) == []
    # Every copy of the card is replaced in place: outcome on top, no buttons left.
    updates = await connector.wait_for(
        "update", where=lambda c: c.activity_id == posted.answered_id
    )
    assert "approved by alice@example.com" in card_text(updates[0])
    assert actions_of(card_of(updates[0])) == []

    active = await connector.wait_for(
        "send",
        where=lambda c: (
            c.conversation_id == DEV.personal_conversation_id and "is active on" in card_text(c)
        ),
    )
    notification = card_of(active[0])
    assert [a["title"] for a in actions_of(notification)] == ["Revoke now", "Extend"]
    async with teams_leash.context.sessions() as session:
        grant = (await session.exec(select(Grant).where(col(Grant.request_id) == request_id))).one()
    assert grant.state == GrantState.ACTIVE
    assert inline_policy(fresh_sandbox, "support-triage-agent", f"leash-grant-{grant.id}")

    revoked = await press(teams_client, connector, notification, "Revoke now", user=DEV)
    assert f"Grant {grant.id} is revoked" in str(revoked["value"])
    await connector.wait_for(
        "send",
        where=lambda c: (
            c.conversation_id == DEV.personal_conversation_id
            and "was revoked by dev@example.com" in card_text(c)
        ),
    )
    assert inline_policy(fresh_sandbox, "support-triage-agent", f"leash-grant-{grant.id}") is None


async def test_the_same_invoke_twice_and_two_owners_at_once_make_one_grant(
    teams_leash: Leash,
    teams_client: TeamsClient,
    connector: FakeBotConnector,
    fresh_sandbox: Sandbox,
) -> None:
    await install(teams_client, connector, OWNER, BACKUP, DEV)
    _, posted = await request_card(teams_client, connector)
    action = button(card_of(posted), "Approve")
    retried = card_action(
        action["verb"],
        action["data"],
        user=OWNER,
        service_url=connector.service_url,
        conversation_id=OWNER.personal_conversation_id,
    )
    by_backup = card_action(
        action["verb"],
        action["data"],
        user=BACKUP,
        service_url=connector.service_url,
        conversation_id=BACKUP.personal_conversation_id,
    )
    responses = await asyncio.gather(
        *(post(teams_client, retried) for _ in range(3)), post(teams_client, by_backup)
    )
    assert [r.status for r in responses] == [200] * 4
    bodies = [await r.json() for r in responses]
    # Whoever lost the race sees the card as it now stands, not an error page.
    assert all("was approved by" in str(b["value"]) for b in bodies)
    # Teams answers before the cloud does: the grant is applied in the background.
    assert teams_leash.teams is not None
    await teams_leash.teams.drain()
    async with teams_leash.context.sessions() as session:
        grants = (await session.exec(select(Grant))).all()
        applied = (
            await session.exec(
                select(AuditEvent).where(col(AuditEvent.event_type) == "grant.applied")
            )
        ).all()
    assert len(grants) == 1
    assert len(applied) == 1
    iam = fresh_sandbox.session().client("iam", endpoint_url=fresh_sandbox.endpoint_url)
    names = iam.list_role_policies(RoleName="support-triage-agent")["PolicyNames"]
    assert [n for n in names if n.startswith("leash-grant-")] == [f"leash-grant-{grants[0].id}"]


async def test_deny_asks_for_a_reason_on_the_card_and_the_requester_learns_it(
    teams_leash: Leash, teams_client: TeamsClient, connector: FakeBotConnector
) -> None:
    await install(teams_client, connector, OWNER, DEV)
    request_id, posted = await request_card(teams_client, connector)
    deny = next(a for a in actions_of(card_of(posted)) if a["title"] == "Deny")
    assert deny["type"] == "Action.ShowCard"
    assert [i["id"] for i in deny["card"]["body"]] == ["reason"]

    blank = await press(teams_client, connector, card_of(posted), "Deny", user=OWNER)
    assert f"Say why you deny {request_id}" in str(blank["value"])
    async with teams_leash.context.sessions() as session:
        request = await session.get(AccessRequest, request_id)
        assert request is not None
        assert request.state == RequestState.PENDING

    denied = await press(
        teams_client,
        connector,
        card_of(posted),
        "Deny",
        user=OWNER,
        inputs={"reason": "use the *read* role"},
    )
    assert "was denied by alice@example.com" in str(denied["value"])
    told = await connector.wait_for(
        "send",
        where=lambda c: (
            c.conversation_id == DEV.personal_conversation_id and "denied" in card_text(c)
        ),
    )
    # The reason is shown literally: markdown in it is escaped.
    assert "use the \\\\*read\\\\* role" in card_text(told[0])


async def test_a_stranger_is_refused_on_the_card_and_nothing_changes(
    teams_leash: Leash, teams_client: TeamsClient, connector: FakeBotConnector
) -> None:
    await install(teams_client, connector, OWNER, DEV, STRANGER)
    request_id, posted = await request_card(teams_client, connector)
    answered = await press(teams_client, connector, card_of(posted), "Approve", user=STRANGER)
    assert "You are not an approver of this request" in str(answered["value"])
    # The stranger hears why, and is not shown the request's card (who asked, what, why).
    assert actions_of(answered["value"]) == []
    assert "Requester:" not in str(answered["value"])
    async with teams_leash.context.sessions() as session:
        request = await session.get(AccessRequest, request_id)
        assert request is not None
        assert request.state == RequestState.PENDING
        assert (await session.exec(select(Grant))).all() == []
