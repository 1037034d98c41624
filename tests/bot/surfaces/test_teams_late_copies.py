"""A copy of an approval card the Bot Connector throttles until after the decision still ends
showing the outcome, with no buttons left."""

from __future__ import annotations

import pytest

from bot.app import Leash
from tests.bot.surfaces.teams_world import (
    DEV,
    OWNER,
    TeamsClient,
    actions_of,
    card_text,
    install,
    post,
)
from tests.bot.surfaces.test_teams import card_of, press, request_card
from tests.fakes.bot_connector import ConnectorCall, FakeBotConnector
from tests.fakes.teams_activities import BOT_ID, TeamsChannel, conversation_update

APPROVALS = TeamsChannel.named("Cloud Approvals")
RETRY_AFTER = 3  # seconds, as the throttled connector answered in the report


@pytest.mark.parametrize(
    "teams_rules",
    [{"approvals_channel": "Cloud Approvals"}],
    indirect=True,
    ids=["approvals channel on Teams"],
)
async def test_a_channel_copy_throttled_past_the_decision_ends_closed(
    teams_leash: Leash, teams_client: TeamsClient, connector: FakeBotConnector
) -> None:
    added = await post(
        teams_client,
        conversation_update(
            members_added=[BOT_ID],
            service_url=connector.service_url,
            conversation_id=APPROVALS.channel_id,
            channel=APPROVALS,
            user=OWNER,
        ),
    )
    assert added.status == 201
    await install(teams_client, connector, OWNER, DEV)
    # The owner's card goes first, then the channel's copy: the channel answers 429 + Retry-After.
    gate = connector.hold_next("send", APPROVALS.channel_id)
    request_id, owner_card = await request_card(teams_client, connector)
    connector.fail_next(1, 429, kind="send", retry_after=RETRY_AFTER)
    gate.set()

    def to_channel(call: ConnectorCall) -> bool:
        return call.conversation_id == APPROVALS.channel_id and request_id in card_text(call)

    (throttled,) = await connector.wait_for("send", where=to_channel, include_failed=True)
    assert throttled.status == 429
    assert [a["title"] for a in actions_of(card_of(throttled))] == ["Approve", "Deny"]

    # Meanwhile the owner approves on the card in their personal chat.
    answered = await press(teams_client, connector, card_of(owner_card), "Approve", user=OWNER)
    assert request_id in str(answered["value"])
    assert not [c for c in connector.calls_to("send") if to_channel(c) and c.ok]

    # After Retry-After the copy is posted with its buttons, and replaced by the outcome.
    (posted,) = await connector.wait_for("send", where=to_channel, timeout=RETRY_AFTER + 15)
    updates = await connector.wait_for(
        "update",
        where=lambda c: (
            c.conversation_id == APPROVALS.channel_id and c.activity_id == posted.answered_id
        ),
    )
    final = card_of(updates[-1])
    assert f"Request {request_id} for support-triage-agent was approved by" in card_text(
        updates[-1]
    )
    assert OWNER.email in card_text(updates[-1])
    assert actions_of(final) == []
    assert "refresh" not in final  # nothing left to redraw: the request is decided
    owner_updates = [
        c for c in connector.calls_to("update") if c.activity_id == owner_card.answered_id
    ]
    assert owner_updates
    assert all(actions_of(card_of(c)) == [] for c in owner_updates)
