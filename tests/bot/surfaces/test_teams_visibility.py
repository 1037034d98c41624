"""A Teams card is redrawn only for people who may see its request (review finding 6)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select

from bot.app import Leash
from bot.domain.states import Outcome
from bot.store.tables import AuditEvent
from tests.bot.surfaces.teams_world import (
    ADMIN,
    BACKUP,
    DEV,
    OWNER,
    STRANGER,
    TeamsClient,
    pending_request,
    post,
)
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.teams_activities import TeamsUser, card_action


def _invoke(connector: FakeBotConnector, who: TeamsUser, verb: str, data: dict[str, Any]) -> Any:
    return card_action(
        verb,
        data,
        user=who,
        service_url=connector.service_url,
        conversation_id=who.personal_conversation_id,
    )


async def _view_refusals(leash: Leash) -> list[AuditEvent]:
    async with leash.context.sessions() as session:
        query = select(AuditEvent).where(col(AuditEvent.event_type) == "request.view_refused")
        return list((await session.exec(query)).all())


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        pytest.param(DEV, True, id="requester"),
        pytest.param(OWNER, True, id="owner"),
        pytest.param(BACKUP, True, id="backup"),
        pytest.param(ADMIN, True, id="admin"),
        pytest.param(STRANGER, False, id="stranger"),
    ],
)
async def test_refresh_shows_the_card_only_to_people_who_may_see_it(
    teams_leash: Leash,
    teams_client: TeamsClient,
    connector: FakeBotConnector,
    who: TeamsUser,
    sees: bool,
) -> None:
    request_id = await pending_request(teams_leash)
    response = await post(teams_client, _invoke(connector, who, "refresh", {"request": request_id}))
    body = await response.json()
    shown = str(body["value"])
    if sees:
        assert f"Request {request_id}" in shown, shown
        assert "triage" in shown  # the reason is on the card
        assert await _view_refusals(teams_leash) == []
        return
    assert shown == "You cannot see this request."
    assert "triage" not in shown
    assert DEV.email not in shown
    [refusal] = await _view_refusals(teams_leash)
    assert (refusal.request_id, refusal.outcome) == (request_id, Outcome.FAILURE)


async def test_an_unknown_request_reads_the_same_as_one_you_may_not_see(
    teams_leash: Leash, teams_client: TeamsClient, connector: FakeBotConnector
) -> None:
    unknown = _invoke(connector, STRANGER, "refresh", {"request": "r-00000000"})
    assert (await (await post(teams_client, unknown)).json())["value"] == (
        "You cannot see this request."
    )


async def test_a_strangers_click_gets_the_answer_without_the_card(
    teams_leash: Leash, teams_client: TeamsClient, connector: FakeBotConnector
) -> None:
    request_id = await pending_request(teams_leash)
    click = _invoke(
        connector,
        STRANGER,
        "approve",
        {"command": f"approve {request_id}", "request": request_id},
    )
    body = await (await post(teams_client, click)).json()
    shown = str(body["value"])
    assert "You are not an approver of this request" in shown, shown
    assert "triage" not in shown  # the request's reason stays on its people's cards
