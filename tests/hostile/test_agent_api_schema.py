"""Schemathesis against the agent API's own OpenAPI document, over a real local server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import schemathesis
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.states import ActorKind
from bot.http.agent_api import openapi_document
from bot.http.server import build_web_app
from cloud.sandbox import Sandbox
from tests.hostile.world import audit_chain_ok, cloud_writes, rows

OPERATIONS = [
    ("/requests", "POST"),
    ("/requests/{request_id}", "GET"),
    ("/grants/{grant_id}/release", "POST"),
    ("/grants/{grant_id}/extend", "POST"),
    ("/me", "GET"),
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 10  # per operation and mode: every call goes through the database


@pytest.fixture
async def base_url(leash: Leash) -> AsyncIterator[str]:
    server = TestServer(build_web_app(leash.lifecycle, max_body_bytes=64 * 1024))
    await server.start_server()
    yield str(server.make_url("/api/v1"))
    await server.close()


def fuzz(
    base_url: str,
    mode: schemathesis.GenerationMode,
    headers: dict[str, str],
    expect_status: int | None,
) -> int:
    """Call every operation with generated cases; check them; return how many ran."""
    schema = schemathesis.openapi.from_dict(openapi_document())
    ran = 0
    for path, method in OPERATIONS:
        operation = schema[path][method]

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: schemathesis.Case[Any]) -> None:
            nonlocal ran
            ran += 1
            if case.query and "wait" in case.query:
                case.query["wait"] = 0  # never sit on the long poll
            response = case.call(base_url=base_url, headers=headers, timeout=10)
            assert response.status_code < 500, response.text
            if expect_status is not None:
                assert response.status_code == expect_status, response.text
            case.validate_response(response, checks=CHECKS)

        check()
    return ran


@pytest.mark.parametrize(
    "mode",
    [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    ids=["valid by the schema", "invalid by the schema"],
)
async def test_generated_calls_conform_and_change_nothing(
    leash: Leash, fresh_sandbox: Sandbox, base_url: str, mode: schemathesis.GenerationMode
) -> None:
    issued = await leash.lifecycle.tokens.issue(
        "support-triage-agent", actor=Actor("owner-a", ActorKind.USER, "console")
    )
    before = await rows(leash)
    headers = {"Authorization": f"Bearer {issued.token}"}
    ran = await asyncio.to_thread(fuzz, base_url, mode, headers, None)
    assert ran >= len(OPERATIONS)
    after = await rows(leash)
    if mode is schemathesis.GenerationMode.NEGATIVE:
        assert after.changes == before.changes
    assert (after.approvals, after.grants) == (before.approvals, before.grants)
    assert cloud_writes(fresh_sandbox) == []
    assert await audit_chain_ok(leash)


async def test_generated_calls_without_a_token_are_401(
    leash: Leash, fresh_sandbox: Sandbox, base_url: str
) -> None:
    before = await rows(leash)
    ran = await asyncio.to_thread(
        fuzz, base_url, schemathesis.GenerationMode.POSITIVE, {"Authorization": ""}, 401
    )
    assert ran >= len(OPERATIONS)
    assert (await rows(leash)).changes == before.changes
    assert cloud_writes(fresh_sandbox) == []
