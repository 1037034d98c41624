"""The Teams fakes answer like the Bot Connector and sign tokens botbuilder accepts."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import aiohttp
import jwt
import pytest
from botbuilder.schema import Activity
from botframework.connector.auth import (
    JwtTokenExtractor,
    VerifyOptions,
)
from jwt.algorithms import RSAAlgorithm

from tests.fakes import teams_activities as teams
from tests.fakes.bot_connector import ADAPTIVE_CARD, FakeBotConnector, TeamsChannel, TeamsUser
from tests.fakes.bot_framework_tokens import BotFrameworkIssuer

ALICE = TeamsUser.named("alice", email="alice@example.com", name="Alice Liddell")
OPS = TeamsChannel.named("Platform", "approvals")
THREAD = OPS.thread_id("1700000000000")
BEARER = {"Authorization": "Bearer outbound-token"}
CARD = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "hi"}]}
APP_ID = "00000000-0000-0000-0000-00000000b07"


@pytest.fixture
async def fake() -> AsyncIterator[FakeBotConnector]:
    async with FakeBotConnector() as connector:
        yield connector


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=BEARER) as session:
        yield session


@pytest.fixture(scope="module")
def issuer() -> Iterator[BotFrameworkIssuer]:
    with BotFrameworkIssuer() as running:
        yield running


def _url(fake: FakeBotConnector, conversation_id: str, *rest: str) -> str:
    """Build a URL the way msrest does: each path argument quoted with no safe characters."""
    tail = "".join(f"/{quote(part, safe='')}" for part in rest)
    return f"{fake.service_url}v3/conversations/{quote(conversation_id, safe='')}{tail}"


# -- Bot Connector ---------------------------------------------------------------------------


async def test_activity_calls_are_recorded_with_decoded_ids(
    fake: FakeBotConnector, http: aiohttp.ClientSession
) -> None:
    message = {"type": "message", "text": "hello", "replyToId": "1700000000000"}
    async with http.post(_url(fake, THREAD, "activities", "1700000000000"), json=message) as r:
        assert r.status == 201
        reply_id = (await r.json())["id"]
    async with http.post(_url(fake, THREAD, "activities"), json={"type": "message"}) as r:
        sent_id = (await r.json())["id"]
    async with http.put(_url(fake, THREAD, "activities", reply_id), json=message) as r:
        assert await r.json() == {"id": reply_id}
    async with http.delete(_url(fake, THREAD, "activities", reply_id)) as r:
        assert r.status == 200

    assert fake.service_url.endswith("/")
    assert THREAD.endswith("@thread.tacv2;messageid=1700000000000")
    assert reply_id != sent_id
    [reply] = await fake.wait_for("reply")
    assert (reply.conversation_id, reply.activity_id, reply.text) == (
        THREAD,
        "1700000000000",
        "hello",
    )
    assert reply.authorization == "Bearer outbound-token"
    assert [c.kind for c in fake.calls] == ["reply", "send", "update", "delete"]
    assert fake.calls_to("update")[0].activity_id == reply_id
    assert fake.calls_to("delete")[0].body == {}
    assert [c.kind for c in fake.activities()] == ["reply", "send"]


async def test_cards_are_read_from_adaptive_card_attachments(
    fake: FakeBotConnector, http: aiohttp.ClientSession
) -> None:
    attachments = [
        {"contentType": "text/html", "content": "<p>x</p>"},
        {"contentType": ADAPTIVE_CARD, "content": CARD},
    ]
    url = _url(fake, ALICE.personal_conversation_id, "activities")
    async with http.post(url, json={"type": "message", "attachments": attachments}):
        pass

    [call] = await fake.wait_for("send", where=lambda c: bool(c.cards))
    assert fake.cards(call) == [CARD]
    assert call.conversation_id == ALICE.personal_conversation_id


async def test_create_conversation_is_stable_per_member_and_posts_to_channels(
    fake: FakeBotConnector, http: aiohttp.ClientSession
) -> None:
    personal = {"bot": {"id": teams.BOT_ID}, "members": [{"id": ALICE.teams_id}], "isGroup": False}
    channel_post = {
        "isGroup": True,
        "channelData": {"channel": {"id": OPS.channel_id}},
        "activity": {"type": "message", "text": "new request"},
    }
    answers: list[dict[str, Any]] = []
    for body in (personal, personal, channel_post):
        async with http.post(f"{fake.service_url}v3/conversations", json=body) as r:
            assert r.status == 201
            answers.append(await r.json())

    first, again, post = answers
    assert first["id"].startswith("a:new-")
    assert first == again
    assert "activityId" not in first
    assert post["id"] == OPS.thread_id(post["activityId"])
    assert len(fake.calls_to("create_conversation")) == 3


async def test_get_member_by_teams_or_aad_id_and_unknown_member(
    fake: FakeBotConnector, http: aiohttp.ClientSession
) -> None:
    fake.add_member(ALICE)
    for member_id in (ALICE.teams_id, ALICE.aad_object_id):
        async with http.get(_url(fake, THREAD, "members", member_id)) as r:
            assert r.status == 200
            account = await r.json()
        assert account["aadObjectId"] == ALICE.aad_object_id
        assert account["email"] == account["userPrincipalName"] == "alice@example.com"
        assert (account["givenName"], account["surname"]) == ("Alice", "Liddell")
        assert account["tenantId"] == teams.TENANT_ID
    async with http.get(_url(fake, THREAD, "members", "29:nobody")) as r:
        assert r.status == 404
        error = await r.json()

    assert error["error"]["code"] == "MemberNotFoundInConversation"
    assert [c.member_id for c in fake.calls_to("get_member")] == [
        ALICE.teams_id,
        ALICE.aad_object_id,
        "29:nobody",
    ]
    assert fake.calls_to("get_member")[0].conversation_id == THREAD


async def test_faults_answer_errors_with_retry_after_and_are_recorded(
    fake: FakeBotConnector, http: aiohttp.ClientSession
) -> None:
    fake.fail_next(2, 429, kind="send", retry_after=3)
    statuses: list[tuple[int, str | None]] = []
    async with http.post(_url(fake, THREAD, "activities", "1"), json={"text": "r"}) as r:
        statuses.append((r.status, r.headers.get("Retry-After")))
    for _ in range(3):
        async with http.post(_url(fake, THREAD, "activities"), json={"text": "s"}) as r:
            statuses.append((r.status, r.headers.get("Retry-After")))
            body = await r.json()

    assert statuses == [(201, None), (429, "3"), (429, "3"), (201, None)]
    assert "id" in body
    assert fake.fault_count == 2
    assert [c.status for c in fake.calls_to("send")] == [429, 429, 201]
    assert len(fake.failed_calls) == 2
    assert len(await fake.wait_for("send")) == 1  # failed calls are not deliveries
    assert len(await fake.wait_for("send", include_failed=True, count=3)) == 3

    fake.fail_next(1, 503)
    async with http.put(_url(fake, THREAD, "activities", "1"), json={}) as r:
        assert r.status == 503
        assert (await r.json())["error"]["code"] == "ServiceUnavailable"
        assert "Retry-After" not in r.headers
    fake.reset()
    assert fake.calls == []
    assert fake.fault_count == 0


async def test_wait_for_times_out_listing_what_arrived(
    fake: FakeBotConnector, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{fake.service_url}v3/teams/19%3Ax/members/29%3Ay") as r:
        assert r.status == 404
    async with http.post(_url(fake, THREAD, "activities"), json={"text": "only this"}):
        pass

    with pytest.raises(
        AssertionError, match=r"(?s)expected 2 send.*unhandled.*GET /v3/teams/.*only this"
    ):
        await fake.wait_for("send", count=2, timeout=0.05)


# -- Activities ------------------------------------------------------------------------------


def test_channel_message_mentions_the_bot_like_teams() -> None:
    activity = teams.message(
        "approve 42", user=ALICE, service_url="http://x/", channel=OPS, mention_bot=True
    )

    assert activity["text"] == "<at>Leash</at> approve 42"
    assert activity["conversation"]["id"] == OPS.thread_id(activity["id"])
    assert activity["conversation"]["conversationType"] == "channel"
    assert activity["entities"][0] == {
        "type": "mention",
        "text": "<at>Leash</at>",
        "mentioned": {"id": "28:leash-bot", "name": "Leash"},
    }
    parsed = Activity().deserialize(activity)
    assert parsed.from_property.aad_object_id == ALICE.aad_object_id
    assert parsed.conversation.is_group is True
    assert parsed.channel_data["team"]["id"] == OPS.team_id
    [mention] = parsed.get_mentions()
    assert mention.additional_properties["mentioned"]["id"] == teams.BOT_ID


def test_personal_message_card_action_and_roster_updates() -> None:
    url = "http://x/"
    first = teams.message("hi", user=ALICE, service_url=url)
    second = teams.message("hi", user=ALICE, service_url=url)
    action = teams.card_action(
        "approve",
        {"request": 7},
        user=ALICE,
        service_url=url,
        conversation_id=first["conversation"]["id"],
        reply_to_id=first["id"],
    )
    added = teams.conversation_update(
        members_added=[teams.BOT_ID, ALICE],
        service_url=url,
        conversation_id=OPS.team_id,
        channel=OPS,
    )
    installed = teams.installation_update(
        user=ALICE, service_url=url, conversation_id=ALICE.personal_conversation_id
    )

    assert first["conversation"] == second["conversation"]
    assert first["conversation"]["conversationType"] == "personal"
    assert "isGroup" not in first["conversation"]
    assert int(second["id"]) > int(first["id"])
    assert (action["type"], action["name"], action["replyToId"]) == (
        "invoke",
        "adaptiveCard/action",
        first["id"],
    )
    assert action["value"] == {
        "action": {"type": "Action.Execute", "verb": "approve", "data": {"request": 7}},
        "trigger": "manual",
    }
    assert added["membersAdded"] == [
        {"id": "28:leash-bot"},
        {"id": ALICE.teams_id, "aadObjectId": ALICE.aad_object_id},
    ]
    assert added["channelData"]["eventType"] == "teamMemberAdded"
    assert (installed["type"], installed["action"]) == ("installationUpdate", "add")
    assert Activity().deserialize(action).value["action"]["verb"] == "approve"


# -- Tokens ----------------------------------------------------------------------------------


def _fetch(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a local test server
        document: dict[str, Any] = json.load(response)
    return document


def test_tokens_verify_with_the_published_key_and_strangers_do_not(
    issuer: BotFrameworkIssuer,
) -> None:
    metadata = _fetch(issuer.metadata_url)
    [key] = _fetch(metadata["jwks_uri"])["keys"]
    public_key = RSAAlgorithm.from_jwk(json.dumps(key))
    good = issuer.token(audience=APP_ID, service_url="http://x/")
    stranger = issuer.token(audience=APP_ID, service_url="http://x/", signed_by_stranger=True)

    assert metadata["issuer"] == "https://api.botframework.com"
    assert (key["kid"], key["use"], key["endorsements"]) == (issuer.kid, "sig", ["msteams"])
    assert jwt.get_unverified_header(stranger)["kid"] == issuer.kid
    claims = jwt.decode(good, public_key, algorithms=["RS256"], audience=APP_ID)  # type: ignore[arg-type]
    assert (claims["iss"], claims["serviceurl"]) == ("https://api.botframework.com", "http://x/")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(stranger, public_key, algorithms=["RS256"], audience=APP_ID)  # type: ignore[arg-type]


async def test_botbuilder_token_extractor_accepts_the_issuer_from_inside_the_loop(
    issuer: BotFrameworkIssuer,
) -> None:
    def extractor() -> Any:
        options = VerifyOptions(
            issuer=[issuer.issuer], audience=None, clock_tolerance=300, ignore_expiration=False
        )
        return JwtTokenExtractor(options, issuer.metadata_url, ["RS256"])

    good = issuer.authorization(audience=APP_ID, service_url="http://x/")
    stranger = issuer.token(audience=APP_ID, service_url="http://x/", signed_by_stranger=True)

    identity = await asyncio.wait_for(
        extractor().get_identity_from_auth_header(good, "msteams"), timeout=5
    )
    assert identity.claims["aud"] == APP_ID
    with pytest.raises(jwt.InvalidSignatureError):
        await extractor().get_identity_from_auth_header(f"Bearer {stranger}", "msteams")
    with pytest.raises(Exception, match="endorsement"):
        await extractor().get_identity_from_auth_header(good, "slack")
