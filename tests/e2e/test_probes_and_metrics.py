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
from bot.web import REQUEST_ID_HEADER, build_web_app
from cloud.sandbox import Sandbox
from tests.e2e.helpers import account_iam, eventually, grant

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


def _delete_role(sandbox: Sandbox, name: str) -> None:
    """Take a role away in the cloud behind Leash's back, so its usage cannot be read."""
    iam = account_iam(sandbox, sandbox.identity(name).account.name)
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
    iam.delete_role(RoleName=name)


async def test_metrics_time_every_scan_run_and_count_identities_it_could_not_read(
    leash: Leash, client: Client, fresh_sandbox: Sandbox
) -> None:
    before = _samples(await (await client.get("/metrics")).text())
    assert before[("leash_scan_duration_seconds_count", ())] == 0
    assert before[("leash_scan_errors_total", ())] == 0

    first = await leash.lifecycle.least_privilege.scanner.scan()
    assert first.scanned > 10
    assert not first.failures
    _delete_role(fresh_sandbox, "code-review-agent")
    second = await leash.lifecycle.least_privilege.scanner.scan()
    assert list(second.failures) == ["code-review-agent"]

    samples = _samples(await (await client.get("/metrics")).text())
    assert samples[("leash_scan_duration_seconds_count", ())] == 2
    # Each run reads a dozen roles from the emulator: measurably more than nothing.
    assert 0 < samples[("leash_scan_duration_seconds_sum", ())] < 60
    assert samples[("leash_scan_duration_seconds_bucket", (("le", "+Inf"),))] == 2
    assert samples[("leash_scan_errors_total", ())] == 1
    assert ("leash_scan_errors_created", ()) not in samples  # a scrape's time would mislead


async def test_every_response_carries_the_callers_request_id_or_a_new_one(
    client: Client,
) -> None:
    echoed = await client.get("/healthz", headers={REQUEST_ID_HEADER: "lb-1f2e.3d_4c-5b"})
    assert echoed.headers[REQUEST_ID_HEADER] == "lb-1f2e.3d_4c-5b"

    for bad in ("has spaces in it", "x" * 129, "semi;colon", ""):
        replaced = await client.get("/healthz", headers={REQUEST_ID_HEADER: bad})
        assert replaced.status == 200
        new = replaced.headers[REQUEST_ID_HEADER]
        assert new != bad
        assert len(new) == 32
        assert int(new, 16) >= 0  # a uuid4 in hex

    unsent = (await client.get("/healthz")).headers[REQUEST_ID_HEADER]
    again = (await client.get("/healthz")).headers[REQUEST_ID_HEADER]
    assert unsent != again  # a fresh one per request

    missing = await client.get("/no/such/route", headers={REQUEST_ID_HEADER: "trace-404"})
    assert missing.status == 404
    assert missing.headers[REQUEST_ID_HEADER] == "trace-404"
