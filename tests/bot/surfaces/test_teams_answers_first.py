"""Teams answers a button's invoke before the cloud does, and updates the card when it has.

The cloud is slowed at the wire (the sandbox's moto fault injection holds IAM's answers), and
Teams' activities go through the real surface; assertions are on states, not on timings.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from bot.app import Leash
from bot.domain.states import GrantState, RequestState
from bot.store.tables import AccessRequest, Grant
from cloud.sandbox import Sandbox
from tests.bot.surfaces.teams_world import (
    DEV,
    OWNER,
    STRANGER,
    TeamsClient,
    card_text,
    install,
    post,
)
from tests.bot.surfaces.test_teams import CARD, button, card_of, request_card
from tests.fakes.bot_connector import ConnectorCall, FakeBotConnector
from tests.fakes.teams_activities import TeamsUser, card_action

ROLE = "support-triage-agent"
# Well past the surface's wait for a quick outcome (card_work.ANSWER_WITHIN, 0.3 s).
HELD = 3.0


async def click(
    client: TeamsClient,
    fake: FakeBotConnector,
    posted: ConnectorCall,
    title: str,
    *,
    user: TeamsUser,
) -> dict[str, Any]:
    """Press a button of a posted card as Teams does: the invoke names the card's message."""
    action = button(card_of(posted), title)
    activity = card_action(
        action["verb"],
        action["data"],
        user=user,
        service_url=fake.service_url,
        conversation_id=user.personal_conversation_id,
        reply_to_id=posted.answered_id,
    )
    response = await post(client, activity)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    assert body["type"] == CARD
    return body


async def grant_of(leash: Leash, request_id: str) -> Grant:
    async with leash.context.sessions() as session:
        return (await session.exec(select(Grant).where(col(Grant.request_id) == request_id))).one()


def updates_of(fake: FakeBotConnector, posted: ConnectorCall) -> list[ConnectorCall]:
    return [c for c in fake.calls_to("update") if c.activity_id == posted.answered_id]


async def test_approve_answers_applying_while_the_cloud_holds_then_the_card_shows_active(
    teams_leash: Leash,
    teams_client: TeamsClient,
    connector: FakeBotConnector,
    fresh_sandbox: Sandbox,
) -> None:
    await install(teams_client, connector, OWNER, DEV)
    request_id, posted = await request_card(teams_client, connector)
    held = fresh_sandbox.moto.inject(
        "iam:PutRolePolicy", code="", delay=HELD, match={"RoleName": ROLE}
    )

    answered = await click(teams_client, connector, posted, "Approve", user=OWNER)

    # The decision is in the answer; the grant is not applied yet.
    grant = await grant_of(teams_leash, request_id)
    assert grant.state == GrantState.APPLYING
    shown = str(answered["value"])
    assert f"Approved {request_id}: applying grant {grant.id} in the cloud" in shown
    assert "approved by alice@example.com" in shown  # the request's card, as it now stands
    async with teams_leash.context.sessions() as session:
        request = await session.get(AccessRequest, request_id)
        assert request is not None
        assert request.state == RequestState.APPROVED

    # When the cloud answers, the clicked card is updated in place: active, with its expiry.
    finals = await connector.wait_for(
        "update",
        where=lambda c: (
            c.activity_id == posted.answered_id and f"grant {grant.id} is active" in card_text(c)
        ),
        timeout=HELD + 15,
    )
    assert held.used == 1
    assert "until" in card_text(finals[0])
    assert (await grant_of(teams_leash, request_id)).state == GrantState.ACTIVE
    assert teams_leash.teams is not None
    await teams_leash.teams.drain()
    # The outcome is the card's last word: closing the request's cards came before it.
    last = updates_of(connector, posted)[-1]
    assert f"grant {grant.id} is active" in card_text(last)


async def test_a_refusal_is_in_the_answer_and_leaves_no_background_work(
    teams_leash: Leash,
    teams_client: TeamsClient,
    connector: FakeBotConnector,
    fresh_sandbox: Sandbox,
) -> None:
    await install(teams_client, connector, OWNER, DEV, STRANGER)
    request_id, posted = await request_card(teams_client, connector)
    held = fresh_sandbox.moto.inject("iam:*", code="", delay=HELD, times=None)
    before = len(connector.calls)

    answered = await click(teams_client, connector, posted, "Approve", user=STRANGER)

    assert "You are not an approver of this request" in str(answered["value"])
    assert "applying" not in str(answered["value"])
    assert teams_leash.teams is not None
    await teams_leash.teams.drain()
    # Nothing ran after the answer: no cloud call, no card update, no message.
    assert held.used == 0
    assert connector.calls[before:] == []
    async with teams_leash.context.sessions() as session:
        request = await session.get(AccessRequest, request_id)
        assert request is not None
        assert request.state == RequestState.PENDING
        assert (await session.exec(select(Grant))).all() == []


async def test_shutdown_drains_the_grant_being_applied_and_its_card_update(
    teams_leash: Leash,
    teams_client: TeamsClient,
    connector: FakeBotConnector,
    fresh_sandbox: Sandbox,
) -> None:
    await install(teams_client, connector, OWNER, DEV)
    request_id, posted = await request_card(teams_client, connector)
    fresh_sandbox.moto.inject("iam:PutRolePolicy", code="", delay=HELD, match={"RoleName": ROLE})
    answered = await click(teams_client, connector, posted, "Approve", user=OWNER)
    assert "applying grant" in str(answered["value"])
    assert (await grant_of(teams_leash, request_id)).state == GrantState.APPLYING

    assert teams_leash.teams is not None
    await teams_leash.teams.drain()  # what Leash.close() waits for before it stops

    grant = await grant_of(teams_leash, request_id)
    assert grant.state == GrantState.ACTIVE
    assert f"grant {grant.id} is active" in card_text(updates_of(connector, posted)[-1])


async def test_revoke_answers_at_once_and_the_card_shows_revoked_when_the_cloud_has(
    teams_leash: Leash,
    teams_client: TeamsClient,
    connector: FakeBotConnector,
    fresh_sandbox: Sandbox,
) -> None:
    await install(teams_client, connector, OWNER, DEV)
    request_id, posted = await request_card(teams_client, connector)
    await click(teams_client, connector, posted, "Approve", user=OWNER)  # a quick cloud
    grant = await grant_of(teams_leash, request_id)
    assert grant.state == GrantState.ACTIVE
    notices = await connector.wait_for(
        "send",
        where=lambda c: (
            c.conversation_id == DEV.personal_conversation_id and "is active on" in card_text(c)
        ),
    )
    fresh_sandbox.moto.inject("iam:DeleteRolePolicy", code="", delay=HELD, match={"RoleName": ROLE})

    answered = await click(teams_client, connector, notices[0], "Revoke now", user=DEV)

    assert "Leash is on it (revoke)" in str(answered["value"])
    assert (await grant_of(teams_leash, request_id)).state == GrantState.REVOKING
    finals = await connector.wait_for(
        "update",
        where=lambda c: (
            c.activity_id == notices[0].answered_id
            and f"Grant {grant.id} is revoked" in card_text(c)
        ),
        timeout=HELD + 15,
    )
    assert finals
    assert (await grant_of(teams_leash, request_id)).state == GrantState.REVOKED
