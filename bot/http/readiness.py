"""What `/readyz` asks the database: its schema, and whether this replica can record events."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store.audit import CHAIN_LOCK_KEY

# How long the probe waits for the audit chain's lock (PostgreSQL) or the write lock (SQLite).
LOCK_WAIT_SECONDS = 1.0
# The whole probe, connecting included: inside a readiness probe's 3 s timeout.
PROBE_SECONDS = 2.0
# SQLite's usual wait for the write lock (bot.store.engine), restored after the probe's short one.
SQLITE_BUSY_MS = 30000
_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout expired


@dataclass(frozen=True, slots=True)
class Probe:
    """The database answered: the migration it is at, and why this replica cannot write."""

    revision: str | None
    write_problem: str | None


async def probe(engine: AsyncEngine) -> Probe:
    """Read the schema's revision and try the audit chain's lock, within `PROBE_SECONDS`.

    Every change Leash makes is recorded in the chain, so a replica that cannot take the
    chain's lock (another replica froze holding it) or SQLite's write lock cannot serve.
    Raises when the database does not answer (TimeoutError when it is too slow).
    """
    return await asyncio.wait_for(_probe(engine), timeout=PROBE_SECONDS)


async def _probe(engine: AsyncEngine) -> Probe:
    async with engine.connect() as connection:
        try:
            if connection.dialect.name == "postgresql":
                return await _probe_postgres(connection)
            return await _probe_sqlite(connection)
        except BaseException:
            # Never hand the pool a connection left mid-probe (or with the short busy wait).
            await connection.invalidate()
            raise


async def _probe_postgres(connection: AsyncConnection) -> Probe:
    """Take the chain's advisory lock as `audit.append` does, waiting 1 s; roll back."""
    transaction = await connection.begin()
    try:
        wait_ms = int(LOCK_WAIT_SECONDS * 1000)
        await connection.execute(text(f"SET LOCAL lock_timeout = '{wait_ms}ms'"))
        revision = None
        if await connection.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL")):
            revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
        try:
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY}
            )
        except DBAPIError as error:
            if _sqlstate(error) != _LOCK_NOT_AVAILABLE:
                raise
            return Probe(
                revision,
                f"the audit chain is locked by another session (waited {LOCK_WAIT_SECONDS:g} s)",
            )
        return Probe(revision, None)
    finally:
        await transaction.rollback()


async def _probe_sqlite(connection: AsyncConnection) -> Probe:
    """BEGIN IMMEDIATE (the engine's way to begin) with a 1 s busy wait; roll back."""
    revision = await connection.run_sync(_sqlite_revision)
    await connection.run_sync(_busy_wait, int(LOCK_WAIT_SECONDS * 1000))
    problem = None
    try:
        transaction = await connection.begin()
        await transaction.rollback()
    except DBAPIError as error:
        if "database is locked" not in str(error.orig):
            raise
        problem = f"the database is locked by another writer (waited {LOCK_WAIT_SECONDS:g} s)"
    await connection.run_sync(_busy_wait, SQLITE_BUSY_MS)
    return Probe(revision, problem)


def _sqlite_revision(connection: Connection) -> str | None:
    cursor = _driver(connection).cursor()
    try:
        cursor.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", ("alembic_version",)
        )
        if cursor.fetchone() is None:
            return None
        cursor.execute("SELECT version_num FROM alembic_version")
        row = cursor.fetchone()
        return str(row[0]) if row else None
    finally:
        cursor.close()


def _busy_wait(connection: Connection, milliseconds: int) -> None:
    cursor = _driver(connection).cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(milliseconds)}")
    cursor.close()


def _driver(connection: Connection) -> Any:
    """The driver's connection: a statement through SQLAlchemy would begin (and lock) first."""
    return connection.connection.dbapi_connection


def _sqlstate(error: DBAPIError) -> str | None:
    code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return str(code) if code else None
