"""PostgreSQL goes away for a few seconds behind a TCP proxy: chat and the agent API say so
clearly, /readyz reports it, the leader stops its scheduler, and when the database is back the
scheduler is re-elected and catches up; nothing is lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web import Application, Request
from sqlalchemy.engine import make_url
from sqlmodel import select

from bot.app import Leash, build
from bot.config import Settings
from bot.domain.actors import Actor
from bot.domain.rules import Rules
from bot.domain.states import ActorKind, GrantState
from bot.http.server import build_web_app
from bot.store.tables import AccessRequest
from cloud.sandbox import Sandbox
from tests.conftest import PG_URL
from tests.e2e.helpers import GRANT_ID, audit_types, eventually, grant, inline_policy
from tests.fakes.notifier import RecordingNotifier
from tests.fakes.tcp_proxy import TcpProxy

ROLE = "support-triage-agent"
DEV = Actor("dev", ActorKind.USER, "console")
OWNER = Actor("owner-a", ActorKind.USER, "console")
Client = TestClient[Request, Application]

if PG_URL:  # PostgreSQL cases exist only when a test database is configured

    @pytest.fixture
    async def proxy() -> AsyncIterator[TcpProxy]:
        assert PG_URL is not None
        target = make_url(PG_URL)
        running = TcpProxy(target.host or "127.0.0.1", target.port or 5432)
        await running.start()
        yield running
        await running.close()

    @pytest.fixture
    async def app(
        database_url: str,
        proxy: TcpProxy,
        fresh_sandbox: Sandbox,
        notifier: RecordingNotifier,
        rules: Rules,
    ) -> AsyncIterator[Leash]:
        settings = Settings(
            database_url=proxy.url(database_url),
            sweep_seconds=0.3,
            leader_retry_seconds=0.2,
            leader_check_seconds=0.2,
            leader_lease_seconds=2.0,  # a leader that cannot renew stops within it
        )
        running = build(settings, sandbox=fresh_sandbox, rules=rules, notifiers=[notifier])
        await running.start()
        yield running
        await proxy.restore()  # the engine disposes of its connections through it
        await running.close()

    @pytest.fixture
    async def client(app: Leash) -> AsyncIterator[Client]:
        web_app = build_web_app(
            app.lifecycle, max_body_bytes=64 * 1024, leader=app.leadership.describe
        )
        async with TestClient(TestServer(web_app)) as test_client:
            yield test_client

    async def _say(app: Leash, text: str, actor: Actor) -> str:
        reply = await app.handler.handle_text(text, actor=actor)
        assert reply.ok, reply.text
        return reply.text

    @pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
    async def test_the_database_goes_away_and_comes_back_and_nothing_is_lost(
        app: Leash,
        proxy: TcpProxy,
        client: Client,
        fresh_sandbox: Sandbox,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        assert app.leadership.is_leader
        assert app.runner.running
        issued = await app.handler.handle_text(f"token issue {ROLE}", actor=OWNER)
        token = issued.lines[0]
        assert token.startswith("lsh_")
        submitted = await _say(app, f"request {ROLE} s3-read for 2s because db drill", DEV)
        approved = await _say(app, f"approve {submitted.split()[1]}", OWNER)
        grant_match = GRANT_ID.search(approved)
        assert grant_match is not None
        grant_id = grant_match.group(1)
        active = await grant(app, grant_id)
        assert active.state == GrantState.ACTIVE

        caplog.clear()
        await proxy.cut()

        # Chat: a clear answer, not a traceback, and nothing recorded.
        reply = await app.handler.handle_text(
            f"request {ROLE} s3-read for 10m because while it is down", actor=DEV
        )
        assert not reply.ok
        assert "cannot reach its database" in reply.text
        assert "Traceback" not in reply.text
        # The agent API: 503 with a reason and a Retry-After.
        response = await client.post(
            "/api/v1/requests",
            json={"permission_set": "s3-read", "duration": "5m", "reason": "down"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status == 503
        assert (await response.json())["error"] == "database_unavailable"
        assert "Retry-After" in response.headers
        ready = await client.get("/readyz")
        assert ready.status == 503
        assert (await ready.json())["database"].startswith("unreachable")

        # The leader cannot renew its lease: it stops its scheduler before the lease ends.
        async def deposed() -> bool:
            return not app.leadership.is_leader and not app.runner.running

        assert await eventually(deposed, within=5)

        async def says_why() -> bool:
            return app.leadership.describe().startswith("follower (database unreachable")

        assert await eventually(says_why, within=2)
        # The grant falls due while nobody can write it down.
        live = inline_policy(fresh_sandbox, ROLE, f"leash-grant-{grant_id}")
        assert live is not None
        due_in = (active.expires_at - app.context.clock.now()).total_seconds()
        await asyncio.sleep(max(0.0, due_in) + 0.2)
        assert not app.runner.running  # still down: nothing could revoke it yet

        # An outage is a warning, not a traceback from every job and command.
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == [], [r.getMessage() for r in errors]
        await proxy.restore()

        async def revoked() -> bool:
            return (await grant(app, grant_id)).state == GrantState.REVOKED

        assert await eventually(revoked, within=10)
        assert app.leadership.is_leader
        assert app.runner.running
        assert inline_policy(fresh_sandbox, ROLE, f"leash-grant-{grant_id}") is None
        assert (await client.get("/readyz")).status == 200
        audited = await audit_types(app, grant_id=grant_id)
        assert audited.count("grant.applied") == 1
        assert audited.count("grant.revoked") == 1
        async with app.context.sessions() as session:
            requests = (await session.exec(select(AccessRequest))).all()
        assert [r.reason for r in requests] == ["db drill"]  # the one made while down is not
        again = await app.handler.handle_text(
            f"request {ROLE} s3-read for 10m because it is back", actor=DEV
        )
        assert again.ok, again.text
