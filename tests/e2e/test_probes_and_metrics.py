"""/healthz, /readyz and /metrics: what an orchestrator and Prometheus see."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.app import Leash, build
from bot.config import Settings
from bot.domain.actors import Actor
from bot.domain.rules import Rules
from bot.domain.states import ActorKind, GrantState
from bot.http.metrics import DATABASE_SECONDS
from bot.http.readiness import PROBE_SECONDS
from bot.http.server import REQUEST_ID_HEADER, build_web_app
from bot.store.audit import CHAIN_LOCK_KEY
from cloud.sandbox import Sandbox
from tests.conftest import PG_URL
from tests.e2e.helpers import account_iam, eventually, grant
from tests.fakes.tcp_proxy import TcpProxy

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
    async with leash.context.transaction() as session:
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


async def test_readyz_is_503_while_another_process_holds_the_database_write_lock(
    leash: Leash, client: Client, database_url: str
) -> None:
    """SQLite: another writer in BEGIN IMMEDIATE; PostgreSQL: a session on the chain's lock."""
    release = await _hold_the_write_lock(database_url)
    try:
        started = time.monotonic()
        response = await client.get("/readyz")
        waited = time.monotonic() - started
        body = await response.json()
        assert response.status == 503, body
        assert body["status"] == "not ready"
        assert body["database"] == "ok"  # it answers, but this replica could not record
        assert "locked" in body["writes"]
        assert body["scheduler"] == "follower (test)"  # the existing fields stay
        assert waited < PROBE_SECONDS + 2
    finally:
        await release()
    again = await client.get("/readyz")
    assert again.status == 200, await again.text()
    assert (await again.json())["writes"] == "ok"


async def _hold_the_write_lock(database_url: str) -> Callable[[], Awaitable[None]]:
    """Take what an audit append needs from a connection of its own; return its release."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        other = sqlite3.connect(str(url.database), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")

        async def release_sqlite() -> None:
            other.execute("ROLLBACK")
            other.close()

        return release_sqlite
    holder = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
    await holder.execute("SELECT pg_advisory_lock($1)", CHAIN_LOCK_KEY)

    async def release_postgres() -> None:
        await holder.execute("SELECT pg_advisory_unlock($1)", CHAIN_LOCK_KEY)
        await holder.close()

    return release_postgres


@pytest.mark.skipif(PG_URL is None, reason="a TCP proxy cuts PostgreSQL; SQLite has no link")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_metrics_answer_from_memory_when_the_database_is_gone(
    database_url: str, fresh_sandbox: Sandbox, rules: Rules
) -> None:
    target = make_url(database_url)
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
    await proxy.start()
    app = build(Settings(database_url=proxy.url(database_url)), sandbox=fresh_sandbox, rules=rules)
    try:
        await app.start(scheduler=False, discover=False)
        web_app = build_web_app(
            app.lifecycle, max_body_bytes=64 * 1024, leader=lambda: "leader (test)"
        )
        async with TestClient(TestServer(web_app)) as test_client:
            up = _samples(await (await test_client.get("/metrics")).text())
            assert up[("leash_database_up", ())] == 1
            assert ("leash_grants", (("state", "active"),)) in up

            await proxy.cut()
            started = time.monotonic()
            response = await test_client.get("/metrics")
            waited = time.monotonic() - started
            assert response.status == 200
            down = _samples(await response.text())
            assert waited < DATABASE_SECONDS + 2
            assert down[("leash_database_up", ())] == 0
            assert down[("leash_leader", ())] == 1  # from memory: sum(leash_leader) still works
            assert not any(name.startswith("leash_grants") for name, _ in down)
            assert ("leash_http_requests_total", (("route", "/metrics"), ("status", "2xx"))) in (
                down
            )
    finally:
        await proxy.restore()
        await app.close()
        await proxy.close()


@pytest.mark.skipif(PG_URL is None, reason="a lock held in PostgreSQL stalls the reads")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_metrics_do_not_wait_on_a_database_that_never_answers(
    leash: Leash, client: Client, database_url: str
) -> None:
    """Another session holds the grant table exclusively: the reads stall, the scrape does not."""
    url = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    holder = await asyncpg.connect(url)
    transaction = holder.transaction()
    await transaction.start()
    await holder.execute('LOCK TABLE "grant" IN ACCESS EXCLUSIVE MODE')
    try:
        started = time.monotonic()
        response = await client.get("/metrics")
        waited = time.monotonic() - started
        samples = _samples(await response.text())
        assert response.status == 200
        assert DATABASE_SECONDS - 0.5 < waited < DATABASE_SECONDS + 2
        assert samples[("leash_database_up", ())] == 0
        assert samples[("leash_leader", ())] == 0
    finally:
        await transaction.rollback()
        await holder.close()
    samples = _samples(await (await client.get("/metrics")).text())
    assert samples[("leash_database_up", ())] == 1
