"""Hostile bodies on every HTTP surface: a clear 4xx, nothing stored, nothing written to AWS."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.states import ActorKind
from bot.http.server import build_web_app
from cloud.sandbox import Sandbox
from tests.bot.surfaces.conftest import DEV, SlackClient
from tests.bot.surfaces.teams_world import DEV as TEAMS_DEV
from tests.bot.surfaces.teams_world import TeamsClient
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.slack_signing import FORM, JSON, sign, slash_command
from tests.fakes.teams_activities import message
from tests.hostile.world import cloud_writes, rows

MB = 1024 * 1024
OWNER_A = Actor("owner-a", ActorKind.USER, "console")
DEEP = 10_000


def deep(levels: int = DEEP) -> str:
    return "[" * levels + "]" * levels


async def slack_post(client: SlackClient, body: bytes, content_type: str = FORM) -> Any:
    headers = sign("test-signing-secret", body, content_type=content_type)
    return await client.post("/slack/events", data=body, headers=headers)


def slack_bodies(response_url: str) -> dict[str, tuple[bytes, str]]:
    command, _ = slash_command(
        "request support-triage-agent s3-read for 10m because x",
        user_id=DEV,
        response_url=response_url,
    )
    return {
        "1 MB": (command + b"&pad=" + b"x" * MB, FORM),
        "deeply nested payload": (urlencode({"payload": deep()}).encode(), FORM),
        "deeply nested JSON event": (deep().encode(), JSON),
        "payload that is not JSON": (b"payload=%7Bnot+json", FORM),
        "payload that is a list": (urlencode({"payload": "[1, 2]"}).encode(), FORM),
        "malformed form": (b"%%%&&&==;\x00", FORM),
        "not UTF-8": (command + b"&x=\xff\xfe", FORM),
        "JSON that is not an object": (b'"just a string"', JSON),
    }


SLACK_CASES = list(slack_bodies("http://x"))


@pytest.mark.parametrize("case", SLACK_CASES, ids=SLACK_CASES)
async def test_slack_hostile_bodies_get_a_clear_4xx_and_do_nothing(
    slack_leash: Leash,
    client: SlackClient,
    slack_api: FakeSlackApi,
    fresh_sandbox: Sandbox,
    case: str,
) -> None:
    assert slack_leash.slack is not None
    await slack_leash.slack.drain()
    posted_before = len(slack_api.calls_to("chat.postMessage"))
    before = await rows(slack_leash)
    body, content_type = slack_bodies(f"{slack_api.response_url_base}hostile")[case]
    response = await slack_post(client, body, content_type)
    assert 400 <= response.status < 500, (response.status, await response.text())
    assert await response.text(), "a refusal says something"
    await asyncio.sleep(0.2)  # anything acted on would have answered by now
    assert slack_api.calls_to("response_url") == []
    assert len(slack_api.calls_to("chat.postMessage")) == posted_before
    assert (await rows(slack_leash)).changes == before.changes
    assert cloud_writes(fresh_sandbox) == []


def teams_bodies(service_url: str) -> dict[str, tuple[bytes, str]]:
    activity = message(
        "request support-triage-agent s3-read for 10m because x",
        user=TEAMS_DEV,
        service_url=service_url,
    )
    padded = activity | {"channelData": {"pad": "x" * MB}}
    nested = json.dumps(activity | {"value": "NESTED"}).replace('"NESTED"', deep())
    return {
        "1 MB": (json.dumps(padded).encode(), "application/json"),
        "deeply nested": (nested.encode(), "application/json"),
        "plain text": (json.dumps(activity).encode(), "text/plain"),
        "no content type": (json.dumps(activity).encode(), ""),
        "not UTF-8 inside a string": (
            json.dumps(activity).encode().replace(b"because x", b"because \xff\xfe"),
            "application/json",
        ),
    }


TEAMS_CASES = list(teams_bodies("http://x/"))


@pytest.mark.parametrize("case", TEAMS_CASES, ids=TEAMS_CASES)
async def test_teams_hostile_bodies_get_a_clear_4xx_and_do_nothing(
    teams_leash: Leash,
    teams_client: TeamsClient,
    connector: FakeBotConnector,
    fresh_sandbox: Sandbox,
    case: str,
) -> None:
    before = await rows(teams_leash)
    body, content_type = teams_bodies(connector.service_url)[case]
    headers = {"Content-Type": content_type} if content_type else {}
    response = await teams_client.post("/api/messages", data=body, headers=headers)
    assert 400 <= response.status < 500, (response.status, await response.text())
    assert (await response.json())["message"]
    await asyncio.sleep(0.2)
    assert connector.activities() == []
    assert (await rows(teams_leash)).changes == before.changes
    assert cloud_writes(fresh_sandbox) == []


API_BODIES: dict[str, bytes] = {
    "1 MB": json.dumps({"permission_set": "s3-read", "reason": "x" * MB}).encode(),
    "deeply nested": b'{"permission_set": "s3-read", "actions": ' + deep().encode() + b"}",
    "deeply nested object": b'{"a":' * DEEP + b"1" + b"}" * DEEP,
    "not UTF-8 in the reason": (
        b'{"permission_set": "s3-read", "duration": "10m", "reason": "\xff\xfe"}'
    ),
    "a list": b"[]",
    "null": b"null",
}
API_CASES = list(API_BODIES)


@pytest.fixture
async def api_client(leash: Leash) -> Any:
    app = build_web_app(leash.lifecycle, max_body_bytes=MB)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.mark.parametrize("case", API_CASES, ids=API_CASES)
async def test_agent_api_hostile_bodies_get_a_clear_4xx_and_do_nothing(
    leash: Leash,
    api_client: TestClient[Request, Application],
    fresh_sandbox: Sandbox,
    case: str,
) -> None:
    issued = await leash.lifecycle.tokens.issue("support-triage-agent", actor=OWNER_A)
    before = await rows(leash)
    response = await api_client.post(
        "/api/v1/requests",
        data=API_BODIES[case],
        headers={"Authorization": f"Bearer {issued.token}", "Content-Type": "application/json"},
    )
    assert 400 <= response.status < 500, (response.status, await response.text())
    body = await response.json()
    assert body["error"]
    assert body["message"]
    assert (await rows(leash)).changes == before.changes
    assert cloud_writes(fresh_sandbox) == []
