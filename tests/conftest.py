"""Shared fixtures: a seeded moto server, a database per test, a built Leash."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import Leash, build
from bot.config import BUNDLED_POLICY, Settings, load_rules
from bot.domain.rules import Rules
from bot.store.engine import migrate
from cloud.sandbox import Sandbox
from cloud.sandbox.azure import AzureEmulator
from cloud.sandbox.gcp import GcpEmulator
from tests.fakes.notifier import RecordingNotifier

PG_URL = os.environ.get("LEASH_TEST_DATABASE_URL")
# Checks every cloud operation Leash calls during the run against manifests/.
pytest_plugins = ("tests.cloud_operations",)


# Modules whose tests run `leash serve` processes or wait on real timers: collected first, so
# pytest-xdist starts them at once instead of leaving them for the end of the run.
SLOW_MODULES = (
    "test_crash_points",
    "test_replica_failover",
    "test_replicas_starting_together",
    "test_restart",
    "test_database_faults",
    "test_leadership",
    "test_azure_from_chat",
    "test_least_privilege",
    "test_store",
)


def pytest_configure(config: pytest.Config) -> None:
    """One audit key for the run: `leash serve` on a real cloud refuses to start without one,
    and the `leash serve` processes tests start inherit it. Leash's cache (AWS's action data)
    goes to the machine's temporary directory, not the user's home.

    PostgreSQL's idle-in-transaction bound is 60 s for the suite's Leashes instead of the
    production 10 s: on a CI machine running four workers on two cores a transaction's
    coroutine has waited over 10 s for the event loop between two statements, and the server
    cut its session off (a frozen replica's bound, not a test's subject). The tests of that
    bound (tests/e2e/test_frozen_replicas.py) set their own."""
    os.environ.setdefault("LEASH_DATABASE_IDLE_IN_TRANSACTION_SECONDS", "60")
    os.environ.setdefault("LEASH_AUDIT_KEY", secrets.token_hex(32))
    os.environ.setdefault(
        "LEASH_CACHE_DIR", str(Path(tempfile.gettempdir()) / f"leash-test-cache-{os.getuid()}")
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def slow_first(item: pytest.Item) -> int:
        module = Path(item.nodeid.partition("::")[0]).stem
        return SLOW_MODULES.index(module) if module in SLOW_MODULES else len(SLOW_MODULES)

    items.sort(key=slow_first)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    running = Sandbox.start()
    yield running
    running.stop()


@pytest.fixture
def fresh_sandbox(sandbox: Sandbox) -> Sandbox:
    sandbox.reset()
    return sandbox


@pytest.fixture(scope="session")
def gcp_emulator() -> Iterator[GcpEmulator]:
    running = GcpEmulator.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def azure_emulator() -> Iterator[AzureEmulator]:
    running = AzureEmulator.start()
    yield running
    running.stop()


@pytest.fixture
def azure_sandbox(fresh_sandbox: Sandbox, azure_emulator: AzureEmulator) -> Iterator[Sandbox]:
    """The sandbox with the (freshly reset) Azure emulator beside it."""
    azure_emulator.reset()
    fresh_sandbox.azure = azure_emulator
    yield fresh_sandbox
    fresh_sandbox.azure = None


@pytest.fixture
def gcp_sandbox(fresh_sandbox: Sandbox, gcp_emulator: GcpEmulator) -> Iterator[Sandbox]:
    """The sandbox with the (freshly reset) GCP emulator beside it, as `leash serve` runs it."""
    gcp_emulator.reset()
    fresh_sandbox.gcp = gcp_emulator
    yield fresh_sandbox
    fresh_sandbox.gcp = None


def _worker_database(url: str, worker: str) -> str:
    """Each pytest-xdist worker gets its own database (`test_gw0`, ...) so they never meet."""
    if worker == "master":
        return url
    base, _, name = url.rpartition("/")
    return f"{base}/{name}_{worker}"


_CREATED: set[str] = set()


async def _create_database(url: str, worker: str) -> str:
    """Create this worker's database once, from a connection to the configured one."""
    target = _worker_database(url, worker)
    if target == url or target in _CREATED:
        return target
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    name = target.rpartition("/")[2]
    async with engine.connect() as connection:
        exists = await connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        )
        if not exists:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    _CREATED.add(target)
    return target


async def _reset_postgres(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", *(["postgresql"] if PG_URL else [])])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'leash.db'}"
    assert PG_URL is not None
    worker = os.environ.get("PYTEST_XDIST_WORKER", "master")
    url = await _create_database(PG_URL, worker)
    await _reset_postgres(url)
    return url


# This worker's migration from an empty PostgreSQL schema to head, as the SQL it ran; None
# until a first real migration has been recorded (or when it cannot be replayed as text).
_MIGRATION_SQL: dict[str, str | None] = {}
_CHANGES_SCHEMA = ("CREATE ", "ALTER ", "DROP ", "COMMENT ", "INSERT ", "UPDATE ", "DELETE ")


async def migrate_fresh(url: str) -> None:
    """Migrate `database_url`'s new, empty PostgreSQL database to head (SQLite: nothing to do,
    Leash's own migration there is quick).

    The first time on this worker, through `migrate` (Alembic), recording the SQL it runs; after
    that by replaying that SQL in one round trip: the same schema, without Alembic rendering
    some fifty tables again for every test (about a second on a loaded machine). A Leash started
    on it finds the schema at head, as after its own migration."""
    if not url.startswith("postgresql"):
        return
    engine = create_async_engine(url)
    try:
        recorded = _MIGRATION_SQL.get(url)
        if recorded is not None:
            async with engine.begin() as connection:
                raw = await connection.get_raw_connection()
                await raw.driver_connection.execute(recorded)  # type: ignore[union-attr]
            return
        statements: list[str] = []
        replayable = True

        def record(
            conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
        ) -> None:
            nonlocal replayable
            if statement.lstrip().upper().startswith(_CHANGES_SCHEMA):
                replayable = replayable and not parameters
                statements.append(statement.strip())

        event.listen(engine.sync_engine, "before_cursor_execute", record)
        await migrate(engine)
        if replayable and statements:
            _MIGRATION_SQL[url] = ";\n".join(statements) + ";"
    finally:
        await engine.dispose()


def make_rules(**overrides: Any) -> Rules:
    """The bundled example policy with test-friendly timings (1 s minimum grant)."""
    base = load_rules(BUNDLED_POLICY).model_dump(mode="python")
    base["grants"] = base["grants"] | {
        "min_duration": "1s",
        "expiry_warning": "1s",
        "revoke_backoff": "1s",
        "revoke_attempts": 3,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = base[key] | value
        else:
            base[key] = value
    return Rules.model_validate(base)


@pytest.fixture
def notifier() -> RecordingNotifier:
    return RecordingNotifier()


@pytest.fixture
def rules(request: pytest.FixtureRequest) -> Rules:
    """Test rules; parametrize indirectly with a dict of overrides to change them."""
    return make_rules(**getattr(request, "param", {}))


@pytest.fixture
async def leash(
    database_url: str, fresh_sandbox: Sandbox, notifier: RecordingNotifier, rules: Rules
) -> AsyncIterator[Leash]:
    await migrate_fresh(database_url)
    app = build(
        Settings(database_url=database_url, sweep_seconds=0.5),
        sandbox=fresh_sandbox,
        rules=rules,
        notifiers=[notifier],
    )
    await app.start(scheduler=False)
    yield app
    await app.close()
