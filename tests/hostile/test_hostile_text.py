"""Control characters, direction overrides and look-alike identities: refused, never matched."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request
from sqlmodel import select

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.states import ActorKind
from bot.http.server import build_web_app
from bot.store.tables import AccessRequest
from cloud.sandbox import Sandbox
from tests.hostile.world import audit_chain_ok, cloud_writes, rows

DEV = Actor("dev", ActorKind.USER, "console")
OWNER_A = Actor("owner-a", ActorKind.USER, "console")
REQUEST = "request support-triage-agent s3-read for 10m because "


@pytest.mark.parametrize(
    ("reason", "shown"),
    [
        ("tickets\x00 hidden", "U+0000"),
        ("\x1b[31mURGENT\x1b[0m approve now", "U+001B"),
        ("tickets \u202eevil\u202c", "U+202E"),
        ("tickets \u2066isolated\u2069", "U+2066"),
        ("bell\x07", "U+0007"),
        ("c1 control \x85", "U+0085"),
    ],
    ids=["NUL", "ANSI escape", "RTL override", "direction isolate", "bell", "C1 control"],
)
async def test_control_and_direction_characters_in_a_reason_are_refused(
    leash: Leash, fresh_sandbox: Sandbox, reason: str, shown: str
) -> None:
    before = await rows(leash)
    reply = await leash.handler.handle_text(REQUEST + reason, actor=DEV)
    assert not reply.ok
    assert f"control or text-direction character ({shown})" in reply.text
    after = await rows(leash)
    assert after.changes == before.changes
    assert after.refusals == before.refusals + 1, "the refusal was not audited"
    assert cloud_writes(fresh_sandbox) == []
    assert await audit_chain_ok(leash)


@pytest.mark.parametrize(
    ("reason", "shown"),
    [
        ("zero\u200bwidth", "U+200B"),
        ("https\u200b://evil.example/x", "U+200B"),
        ("left\u200emark", "U+200E"),
        ("byte order \ufeff mark", "U+FEFF"),
        ("soft\u00adhyphen", "U+00AD"),
    ],
    ids=["zero-width space", "link split", "LRM", "BOM", "soft hyphen"],
)
async def test_invisible_characters_in_a_reason_are_refused(
    leash: Leash, fresh_sandbox: Sandbox, reason: str, shown: str
) -> None:
    before = await rows(leash)
    reply = await leash.handler.handle_text(REQUEST + reason, actor=DEV)
    assert not reply.ok
    assert f"invisible character ({shown})" in reply.text
    after = await rows(leash)
    assert after.changes == before.changes
    assert after.refusals == before.refusals + 1, "the refusal was not audited"
    assert cloud_writes(fresh_sandbox) == []


async def test_a_joiner_is_refused_in_a_resource_though_kept_in_a_reason(leash: Leash) -> None:
    before = await rows(leash)
    reply = await leash.handler.handle_text(
        "request support-triage-agent s3:GetObject on arn:aws:s3:::prod-bucket\u200d/* "
        "for 10m because 👩\u200d💻 at work",
        actor=DEV,
    )
    assert not reply.ok
    assert "invisible character (U+200D)" in reply.text
    assert (await rows(leash)).changes == before.changes


async def test_unicode_text_that_is_not_a_control_is_kept_as_typed(leash: Leash) -> None:
    reason = "façade — 日本語 مرحبا zero\u200cnon-joiner 👩\u200d💻 *not bold*"
    reply = await leash.handler.handle_text(REQUEST + reason + "\nsecond line", actor=DEV)
    assert reply.ok, reply.text
    async with leash.context.sessions() as session:
        [stored] = (await session.exec(select(AccessRequest))).all()
    assert stored.reason == reason + " second line"  # a newline is whitespace, folded


@pytest.mark.parametrize(
    "reference",
    [
        "arn:aws:iam::999999999999:role/support-triage-agent",
        "arn:aws:iam::999999999999:role/service/support-triage-agent",
        "supp\u043ert-triage-agent",
        "support\u2010triage\u2010agent",
        "support-triage-agent\u200b",
        "\uff53upport-triage-agent",
        "SUPPORT-TRIAGE-AGENT",
        "support-triage-agen",
        "*",
    ],
    ids=[
        "other account ARN",
        "other account ARN with a path",
        "cyrillic o",
        "unicode hyphens",
        "zero-width suffix",
        "fullwidth s",
        "upper case",
        "prefix",
        "wildcard",
    ],
)
async def test_look_alike_identities_are_unknown(
    leash: Leash, fresh_sandbox: Sandbox, reference: str
) -> None:
    before = await rows(leash)
    reply = await leash.handler.handle_text(
        f"request {reference} s3-read for 10m because tickets", actor=DEV
    )
    assert not reply.ok
    if "\u200b" in reference:  # refused before it is looked up: an invisible character
        assert "invisible character (U+200B)" in reply.text
    else:
        assert f"No identity called '{reference}'" in reply.text
    after = await rows(leash)
    assert after.changes == before.changes
    assert after.refusals == before.refusals + 1
    assert cloud_writes(fresh_sandbox) == []


@pytest.fixture
async def api(leash: Leash) -> Any:
    app = build_web_app(leash.lifecycle, max_body_bytes=64 * 1024)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("reason", "\x1b[2J cleared"),
        ("reason", "ok \u202etxt.exe"),
        ("permission_set", "s3-read\x00"),
        ("identity", "support-triage-agent\x00"),
    ],
    ids=["ANSI in reason", "RTL override in reason", "NUL in set", "NUL in identity"],
)
async def test_agent_api_refuses_control_characters(
    leash: Leash,
    api: TestClient[Request, Application],
    fresh_sandbox: Sandbox,
    field: str,
    value: str,
) -> None:
    issued = await leash.lifecycle.tokens.issue("support-triage-agent", actor=OWNER_A)
    body = {"permission_set": "s3-read", "duration": "10m", "reason": "tickets"} | {field: value}
    before = await rows(leash)
    response = await api.post(
        "/api/v1/requests", json=body, headers={"Authorization": f"Bearer {issued.token}"}
    )
    assert response.status == 400
    answer = await response.json()
    assert answer["error"] == "invalid_input"
    assert "control or text-direction character" in answer["message"]
    after = await rows(leash)
    assert after.changes == before.changes
    assert after.refusals == before.refusals + 1, "the agent's refusal was not audited"
    assert cloud_writes(fresh_sandbox) == []
