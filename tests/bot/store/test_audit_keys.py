"""The audit key: required with a real cloud, long enough, generated and kept by the sandbox;
a database hashed before keys is sealed at start and cannot be downgraded later."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.app import Leash, build
from bot.config import ConfigError, Settings
from bot.store import audit, audit_keys
from bot.store.tables import AuditEvent
from cloud.sandbox import Sandbox
from tests.bot.cli.test_audit_cli import broken, cli, history, verify
from tests.bot.store.test_audit_chain import plain, rewrite
from tests.conftest import make_rules


async def serve(tmp_path: Path, **env: str) -> tuple[int, str]:
    """Start `leash serve` against a real cloud (no sandbox) and return its exit and stderr."""
    environment = {
        k: v for k, v in os.environ.items() if k != "LEASH_AUDIT_KEY" and k != "AWS_ENDPOINT_URL"
    }
    environment |= {
        "LEASH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'leash.db'}",
        "LEASH_CLOUD": "aws",
        "LEASH_PORT": "0",
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        "--no-sandbox",
        "--no-console",
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def test_a_real_cloud_without_an_audit_key_is_refused_in_one_line(tmp_path: Path) -> None:
    code, stderr = await serve(tmp_path)
    assert code == 1
    (line,) = stderr.strip().splitlines()
    assert line.startswith("Error: LEASH_AUDIT_KEY: required with a real cloud")
    assert not (tmp_path / "leash.db").exists()


async def test_a_short_audit_key_is_refused_in_one_line(tmp_path: Path) -> None:
    code, stderr = await serve(tmp_path, LEASH_AUDIT_KEY="too-short")
    assert code == 1
    (line,) = stderr.strip().splitlines()
    assert line.startswith("Error: LEASH_AUDIT_KEY: too short: use at least 32 ")


def test_build_refuses_a_real_cloud_without_a_key() -> None:
    settings = Settings(cloud="aws", aws_use_organizations=False, audit_key=None)
    with pytest.raises(ConfigError, match=r"^LEASH_AUDIT_KEY: required with a real cloud"):
        build(settings, rules=make_rules())


def test_the_sandbox_keeps_its_generated_key_beside_the_sqlite_file(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'leash.db'}", audit_key=None)
    first = audit_keys.for_leash(settings, real_cloud=False)
    path = tmp_path / "leash.audit-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert audit_keys.for_leash(settings, real_cloud=False) == first
    assert audit_keys.for_checking(settings) == first
    assert list(tmp_path.iterdir()) == [path]  # no draft left behind


def test_a_sandbox_without_a_sqlite_file_needs_the_key() -> None:
    settings = Settings(database_url="postgresql+asyncpg://db/leash", audit_key=None)
    with pytest.raises(ConfigError, match=r"^LEASH_AUDIT_KEY: required unless the database"):
        audit_keys.for_leash(settings, real_cloud=False)
    with pytest.raises(ConfigError, match=r"^LEASH_AUDIT_KEY: not set; the chain cannot"):
        audit_keys.for_checking(settings)


async def test_a_second_sandbox_run_still_verifies_with_the_kept_key(
    fresh_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEASH_AUDIT_KEY")
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'leash.db'}"
    total = 0
    for _ in range(2):  # two `make run`s on the same file
        leash = build(
            Settings(database_url=database_url), sandbox=fresh_sandbox, rules=make_rules()
        )
        await leash.start(scheduler=False)
        try:
            total = await history(leash)
        finally:
            await leash.close()
    code, output = await verify(database_url)
    assert code == 0, output
    assert f"{total} events verified" in output


async def test_without_any_key_the_chain_cannot_be_checked(
    leash: Leash, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await history(leash)
    monkeypatch.delenv("LEASH_AUDIT_KEY")
    result = await cli(database_url, "audit", "verify")
    assert result.exit_code == 2, result.output
    assert "LEASH_AUDIT_KEY: not set" in result.output


async def events_of(leash: Leash, event_type: str) -> list[AuditEvent]:
    async with leash.context.sessions() as session:
        query = select(AuditEvent).where(col(AuditEvent.event_type) == event_type)
        return list((await session.exec(query)).all())


async def test_a_chain_hashed_before_keys_is_sealed_once_and_stays_sealed(
    leash: Leash, database_url: str
) -> None:
    count = await history(leash)
    await rewrite(leash, sign=plain)  # as Leash hashed every event before LEASH_AUDIT_KEY
    output = await broken(database_url)
    assert "no event is keyed: start Leash once with the audit key" in output

    await leash.start(scheduler=False, discover=False)  # the upgraded Leash starts
    await leash.start(scheduler=False, discover=False)  # and again: still one marker
    (marker,) = await events_of(leash, audit.KEYED_EVENT)
    assert marker.seq == count + 1
    assert marker.detail["unkeyed_events"] == count
    total = await history(leash)
    code, output = await verify(database_url)
    assert code == 0, output
    assert f"{total} events verified" in output

    # Without the key, an unkeyed event before the marker cannot be changed unseen ...
    await rewrite(leash, sign=plain, first=2, last=count, actor="mallory")
    output = await broken(database_url)
    assert f"BROKEN at event {count + 1}: its link to the previous event" in output


async def test_events_after_the_seal_cannot_be_downgraded_to_unkeyed_hashes(
    leash: Leash, database_url: str
) -> None:
    count = await history(leash)
    await rewrite(leash, sign=plain)
    await leash.start(scheduler=False, discover=False)
    await history(leash)
    await rewrite(leash, sign=plain, first=count + 2, actor="mallory")
    output = await broken(database_url)
    assert f"BROKEN at event {count + 2}: it was hashed without the audit key" in output
