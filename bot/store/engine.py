"""The database: engine, sessions, and migrations applied at start."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

if TYPE_CHECKING:
    from alembic.config import Config

from bot.store.fencing import application_name, check_fence

MIGRATIONS = Path(__file__).parent / "migrations"
# Replicas starting together on one PostgreSQL database migrate one at a time: the first takes
# this transaction-scoped advisory lock and upgrades; the others wait, then find nothing to do.
# (The first 8 bytes of sha256("leash-migrations"), as a signed 64-bit int.)
MIGRATION_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"leash-migrations").digest()[:8], "big", signed=True
)


@dataclass(frozen=True, slots=True)
class DatabaseTimeouts:
    """Bounds on every PostgreSQL session, so no frozen or stuck peer can hang this one.

    `lock_seconds`: longest wait for a row or advisory lock (the audit chain's, a grant's row);
    `statement_seconds`: longest statement; `idle_in_transaction_seconds`: a session that
    sits inside a transaction that long (a frozen replica) is cut off and its locks released.
    """

    lock_seconds: float = 10.0
    statement_seconds: float = 30.0
    idle_in_transaction_seconds: float = 10.0

    def server_settings(self) -> dict[str, str]:
        idle = int(self.idle_in_transaction_seconds * 1000)
        return {
            "lock_timeout": str(int(self.lock_seconds * 1000)),
            "statement_timeout": str(int(self.statement_seconds * 1000)),
            "idle_in_transaction_session_timeout": str(idle),
        }


def create_engine(url: str, timeouts: DatabaseTimeouts | None = None) -> AsyncEngine:
    """Build the async engine.

    PostgreSQL: every session is bounded (`DatabaseTimeouts`), named after this process, and
    fenced: scheduler work refused once a newer leader exists (`bot.store.fencing`). SQLite: every
    transaction takes the write lock up front.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        settings = {
            **(timeouts or DatabaseTimeouts()).server_settings(),
            "application_name": application_name(),
        }
        engine = create_async_engine(
            url, pool_pre_ping=True, connect_args={"server_settings": settings}
        )

        @event.listens_for(engine.sync_engine, "begin")
        def _fence_begin(connection: Connection) -> None:
            check_fence(connection)

        @event.listens_for(engine.sync_engine, "commit")
        def _fence_commit(connection: Connection) -> None:
            check_fence(connection, committing=True)

        return engine
    engine = create_async_engine(url, connect_args={"timeout": 30})

    # Serialise writers (including other processes on the same file) so compare-and-set and the
    # audit chain never race; pysqlite's own transaction handling is turned off for this.
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


# The newest migration this build knows (a test checks it against Alembic's scripts). A
# database already there is not handed to Alembic at start, so Alembic (and its templates'
# Mako and Pygments) is imported only when a migration runs.
HEAD_REVISION = "0007"


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        # Waiting for another replica's migration is the point; a migration may take long.
        connection.execute(text("SET LOCAL lock_timeout = 0"))
        connection.execute(text("SET LOCAL statement_timeout = 0"))
        # Alembic works in Python between statements; on a loaded machine that can be long.
        connection.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision` (Alembic is the only way the schema changes)."""
    if revision in ("head", HEAD_REVISION) and await _revision_of(engine) == HEAD_REVISION:
        return
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)


async def _revision_of(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        try:
            found = await connection.execute(text("SELECT version_num FROM alembic_version"))
        except SQLAlchemyError:
            return None
        row = found.first()
    return str(row[0]) if row else None


def head_revision() -> str:
    """The newest migration this build of Leash knows."""
    return HEAD_REVISION


def alembic_head_revision() -> str:
    """The newest migration among Alembic's scripts (what HEAD_REVISION must say)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head() or ""


async def schema_revision(session: AsyncSession) -> str | None:
    """The migration the database is at (None before the first)."""
    try:
        result = await session.exec(text("SELECT version_num FROM alembic_version"))  # type: ignore[call-overload]
    except SQLAlchemyError:
        return None
    row = result.first()
    return str(row[0]) if row else None
