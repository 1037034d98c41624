"""The schema comes only from Alembic migrations, and they match the models."""

from __future__ import annotations

import asyncio
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlmodel import SQLModel

from bot.store.engine import (
    alembic_config,
    alembic_head_revision,
    create_engine,
    head_revision,
    migrate,
)
from tests.conftest import PG_URL


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection)
    return list(compare_metadata(context, SQLModel.metadata))


async def test_migrations_build_exactly_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            assert {"identity", "accessrequest", "grant", "auditevent", "agenttoken"} <= tables
            assert await connection.run_sync(_differences) == []
    finally:
        await engine.dispose()


async def test_migrating_twice_is_harmless(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        await migrate(engine)
        async with engine.connect() as connection:
            version = await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert [row[0] for row in version] == [head]
    finally:
        await engine.dispose()


async def test_upgrade_from_the_first_migration_keeps_existing_rows(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine, "0001")
        async with engine.begin() as connection:
            await connection.exec_driver_sql(
                "INSERT INTO identity (id, provider, account, native_id, name, kind, "
                "classification, classification_reason, tags, discovered_at, present) VALUES "
                "('i-1', 'aws', '123456789012', 'arn:aws:iam::123456789012:role/a', 'a', "
                "'role', 'ai_agent', 'tag', '{}', '2026-01-01 00:00:00.000000', true)"
            )
        await migrate(engine)
        async with engine.connect() as connection:
            rows = await connection.exec_driver_sql(
                "SELECT name, granted_by, inline_policies FROM identity"
            )
            assert [tuple(map(str, row)) for row in rows] == [("a", "[]", "[]")]
            assert await connection.run_sync(_differences) == []
    finally:
        await engine.dispose()


MIGRATE = (
    "import asyncio, sys; from bot.store.engine import create_engine, migrate; "
    "engine = create_engine(sys.argv[1]); asyncio.run(migrate(engine))"
)


@pytest.mark.skipif(PG_URL is None, reason="replicas share PostgreSQL; SQLite has one process")
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_replicas_starting_together_migrate_once(database_url: str) -> None:
    """Three replicas starting at once on an empty database: one migrates, none fails."""
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", MIGRATE, database_url, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    results = await asyncio.gather(*(process.communicate() for process in processes))
    failures = [
        err.decode() for (_, err), p in zip(results, processes, strict=True) if p.returncode
    ]
    assert failures == []
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            version = await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert [row[0] for row in version] == [head]
            assert await connection.run_sync(_differences) == []
    finally:
        await engine.dispose()


def test_the_head_revision_leash_checks_is_alembics_head() -> None:
    assert head_revision() == alembic_head_revision() != ""


UP_TO_DATE_START = """
import asyncio, sys
from bot.store.engine import create_engine, migrate

async def main() -> None:
    engine = create_engine(sys.argv[1])
    await migrate(engine)
    await engine.dispose()

asyncio.run(main())
print(sorted(m for m in sys.modules if m.split(".")[0] in ("alembic", "mako", "pygments")))
"""


async def test_a_start_on_an_up_to_date_database_does_not_load_alembic(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        UP_TO_DATE_START,
        database_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()
    assert out.decode().strip() == "[]"
