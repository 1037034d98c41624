"""Replicas started together on a new database: each records the same discovered identities at
the same moment, and none may crash doing it (a read-then-insert once failed on `identity_pkey`
in 4 of 17 cold starts of three replicas)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import Leash, build
from bot.config import Settings
from bot.domain.rules import Rules
from bot.inventory import registry
from bot.store.engine import create_engine, migrate
from bot.store.tables import AuditEvent, Identity, Ownership
from cloud.base import DiscoveredIdentity, IdentityKind, IdentityRef
from cloud.sandbox import Sandbox
from tests.conftest import PG_URL
from tests.e2e.helpers import eventually
from tests.e2e.leash_process import READY, fast_policy, leash_process, read_until, readiness

REPLICAS = 3
COLD_STARTS = 10
# Seconds for the three to say they serve: generous, as a loaded CI host may be slow to start
# three Python processes at once (about 2.5 s of CPU each, before discovery).
ROUND_LIMIT = 120.0
PG_ONLY = pytest.mark.skipif(PG_URL is None, reason="replicas share PostgreSQL; SQLite has one")


def _discovered(n: int) -> DiscoveredIdentity:
    """An agent role tagged with an owner, as a cloud would report it."""
    name = f"agent-{n:02d}"
    return DiscoveredIdentity(
        ref=IdentityRef(
            provider="aws",
            account="111111111111",
            native_id=f"arn:aws:iam::111111111111:role/{name}",
            name=name,
            kind=IdentityKind.ROLE,
        ),
        tags={"leash:agent": "true", "leash:owner": f"owner-{n % 3}@example.com"},
    )


async def _count(engine: AsyncEngine, model: type[Identity] | type[Ownership]) -> int:
    async with AsyncSession(engine) as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


@PG_ONLY
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_replicas_upserting_the_same_new_identities_at_once_make_one_row_each(
    database_url: str, rules: Rules
) -> None:
    """The second replica's insert waits on the first's uncommitted row, then finds it."""
    first, second = create_engine(database_url), create_engine(database_url)
    await migrate(first)
    found = [_discovered(n) for n in range(12)]
    now = datetime.now(UTC)
    try:
        async with AsyncSession(first) as one, one.begin():
            for identity in found:
                await registry.upsert_discovered(identity, rules=rules, session=one, now=now)
            await one.flush()  # both read "absent" before either commits

            async def upsert_all() -> None:
                async with AsyncSession(second) as two, two.begin():
                    for identity in found:
                        await registry.upsert_discovered(
                            identity, rules=rules, session=two, now=now
                        )

            racing = asyncio.create_task(upsert_all())

            async def second_waits_on_a_row() -> bool:
                async with AsyncSession(first) as watcher:
                    waiting = await watcher.exec(
                        text(  # type: ignore[call-overload]
                            "SELECT count(*) FROM pg_stat_activity "
                            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                        )
                    )
                    return bool(waiting.one()[0])

            assert await eventually(second_waits_on_a_row, within=15, step=0.05)
            assert not racing.done()
        await asyncio.wait_for(racing, timeout=15)  # an IntegrityError would surface here
        assert await _count(first, Identity) == len(found)
        assert await _count(first, Ownership) == len(found)
        async with AsyncSession(first) as session:
            owners = await session.exec(select(Ownership.primary_owner, Ownership.source))
            assert {source for _, source in owners.all()} == {"tag"}
    finally:
        await first.dispose()
        await second.dispose()


@pytest.fixture
async def replicas(
    database_url: str, fresh_sandbox: Sandbox, rules: Rules
) -> AsyncIterator[list[Leash]]:
    """Three Leash builds on one database, migrated, not yet discovering."""
    async with AsyncExitStack() as stack:
        built = []
        for _ in range(REPLICAS):
            app = build(Settings(database_url=database_url), sandbox=fresh_sandbox, rules=rules)
            stack.push_async_callback(app.close)
            await app.start(scheduler=False, discover=False)
            built.append(app)
        yield built


async def test_replicas_refreshing_the_inventory_at_once_all_finish_with_one_row_each(
    replicas: list[Leash], fresh_sandbox: Sandbox
) -> None:
    reports = await asyncio.gather(*(app.discover() for app in replicas))
    assert len({report.found for report in reports}) == 1
    assert reports[0].found >= len(fresh_sandbox.identities) - 2  # SSO/AWS-owned roles aside
    async with replicas[0].context.sessions() as session:
        identities = (await session.exec(select(Identity.native_id))).all()
        refreshed = await session.exec(
            select(func.count()).where(col(AuditEvent.event_type) == "inventory.refreshed")
        )
        assert refreshed.one() == REPLICAS
    assert len(identities) == len(set(identities)) == reports[0].found


async def _create_database(url: str, name: str) -> str:
    """Create the new, empty database `name` beside `url`'s; return its URL."""
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _drop_databases(url: str, *names: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        for name in names:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


async def _cold_start(env: dict[str, str]) -> list[str]:
    """Start three replicas at once on an empty database; stop them once all are ready."""
    async with AsyncExitStack() as stack:
        processes = [
            await stack.enter_async_context(leash_process(env, console=False))
            for _ in range(REPLICAS)
        ]
        outputs = await asyncio.gather(
            *(read_until(process, READY, within=ROUND_LIMIT) for process in processes)
        )
        urls = [output.split("Leash is serving on ", 1)[1].split()[0] for output in outputs]
        for url in urls:

            async def ready(url: str = url) -> bool:
                return (await readiness(url))["status"] == "ready"

            assert await eventually(ready, within=30, step=0.1), url
        for process in processes:
            process.send_signal(signal.SIGTERM)
        logs = []
        for process, output in zip(processes, outputs, strict=True):
            assert process.stdout is not None
            rest = await asyncio.wait_for(process.stdout.read(), timeout=30)
            code = await asyncio.wait_for(process.wait(), timeout=30)
            log = output + rest.decode()
            assert code == 0, f"a replica exited {code}:\n{log}"
            logs.append(log)
        return logs


@PG_ONLY
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_ten_cold_starts_of_three_replicas_on_a_fresh_database_none_crashes(
    database_url: str, fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        **fresh_sandbox.env,
        "LEASH_POLICY_FILE": str(fast_policy(tmp_path)),
        "LEASH_CLOUD": "aws",
        "LEASH_PORT": "0",
        # The management account alone: its roles are enough to race on, and a third of the
        # emulator calls keep the rounds short.
        "LEASH_AWS_USE_ORGANIZATIONS": "false",
        "LEASH_LOG_LEVEL": "WARNING",
    }
    # A database of this test's own beside the worker's, new for every round. Creating one is
    # quick; dropping the last round's takes a checkpoint (a second or more), so it is dropped
    # while the next round runs.
    base = f"{make_url(database_url).database}_cold_start"
    rounds = []
    dropping: list[asyncio.Task[None]] = []
    try:
        for n in range(COLD_STARTS):
            started = time.monotonic()
            env["LEASH_DATABASE_URL"] = await _create_database(database_url, f"{base}_{n}")
            for log in await _cold_start(env):
                assert "Traceback" not in log, f"round {n}:\n{log}"
                assert "Inventory:" in log, f"round {n}:\n{log}"
                assert "Inventory: 0 identities" not in log, f"round {n}:\n{log}"
            rounds.append(time.monotonic() - started)
            dropping.append(asyncio.create_task(_drop_databases(database_url, f"{base}_{n}")))
    finally:
        await asyncio.gather(*dropping, return_exceptions=True)
        await _drop_databases(database_url, *(f"{base}_{n}" for n in range(COLD_STARTS)))
    print(f"cold start rounds (s): {', '.join(f'{seconds:.1f}' for seconds in rounds)}")
