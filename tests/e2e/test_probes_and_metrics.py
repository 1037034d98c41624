"""/healthz, /readyz and /metrics: what an orchestrator and Prometheus see."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from bot.app import Leash
from bot.domain.audit import Actor
from bot.domain.models import ActorKind, GrantState
from bot.web import build_web_app
from tests.e2e.helpers import eventually, grant

Client = TestClient[Request, Application]
OWNER = Actor("owner-a", ActorKind.USER, "console")
DEV = Actor("dev", ActorKind.USER, "console")


@pytest.fixture
async def client(leash: Leash) -> AsyncIterator[Client]:
    app = build_web_app(leash.lifecycle, max_body_bytes=64 * 1024, leader=lambda: "follower (test)")
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def _samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


async def test_readyz_says_ready_with_the_schema_and_who_runs_the_scheduler(
    client: Client,
) -> None:
    response = await client.get("/readyz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ready"
    assert body["database"] == "ok"
    assert body["scheduler"] == "follower (test)"
    assert body["surfaces"] == ["agent-api"]
    assert (await client.get("/healthz")).status == 200


async def test_readyz_is_503_when_the_schema_is_behind_this_build(
    leash: Leash, client: Client
) -> None:
    async with leash.lifecycle.ctx.transaction() as session:
        await session.exec(text("UPDATE alembic_version SET version_num = '0001'"))  # type: ignore[call-overload]
    response = await client.get("/readyz")
    assert response.status == 503
    assert "this build needs" in (await response.json())["schema"]


async def test_metrics_count_requests_grants_and_the_revoke_lag(
    leash: Leash, client: Client
) -> None:
    await leash.runner.start(leash.lifecycle)
    reply = await leash.handler.handle_text(
        "request support-triage-agent s3-read for 2s because metrics", actor=DEV
    )
    approved = await leash.handler.handle_text(f"approve {reply.text.split()[1]}", actor=OWNER)
    grant_id = next(word for word in approved.text.split() if word.startswith("g-"))

    async def revoked() -> bool:
        return (await grant(leash, grant_id)).state == GrantState.REVOKED

    assert await eventually(revoked, within=15)
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = _samples(await response.text())
    assert samples[("leash_requests", (("state", "approved"),))] == 1
    assert samples[("leash_grants", (("state", "revoked"),))] == 1
    assert samples[("leash_active_grants", ())] == 0
    assert samples[("leash_irrevocable_grants", ())] == 0
    assert samples[("leash_revoke_lag_seconds_count", ())] == 1
    assert samples[("leash_grant_apply_seconds_count", ())] == 1
    assert samples[("leash_approval_wait_seconds_count", ())] == 1
    assert samples[("leash_leader", ())] == 0  # "follower (test)"
    assert samples[("leash_http_requests_total", (("route", "/healthz"), ("status", "2xx")))] >= 1
