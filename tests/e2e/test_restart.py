"""Kill Leash while a grant is live, restart after its expiry: it is revoked at once, once."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import BUNDLED_POLICY
from bot.domain.models import AuditEvent, Grant, GrantState
from cloud.sandbox import Sandbox
from tests.e2e.helpers import GRANT_ID, REQUEST_ID, eventually, inline_policy

READY = "Leash is serving"


def _environment(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    policy = re.sub(
        r'(?m)^min_duration = "[^"]+"', 'min_duration = "1s"', BUNDLED_POLICY.read_text()
    )
    assert 'min_duration = "1s"' in policy
    policy_file = tmp_path / "leash.toml"
    policy_file.write_text(policy)
    return {
        **os.environ,
        **sandbox.env,
        "LEASH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'leash.db'}",
        "LEASH_POLICY_FILE": str(policy_file),
        "LEASH_CLOUD": "aws",
        "LEASH_PORT": "0",
        "LEASH_SWEEP_SECONDS": "30",
    }


@asynccontextmanager
async def _leash(
    env: Mapping[str, str], *, console: bool
) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        "--console" if console else "--no-console",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(env),
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def _read_until(process: asyncio.subprocess.Process, pattern: re.Pattern[str] | str) -> str:
    assert process.stdout is not None
    seen = ""
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode()
        assert line, f"Leash exited early:\n{seen}"
        seen += line
        if pattern.search(line) if isinstance(pattern, re.Pattern) else pattern in line:
            return seen


async def _say(process: asyncio.subprocess.Process, *lines: str) -> None:
    assert process.stdin is not None
    process.stdin.write("".join(f"{line}\n" for line in lines).encode())
    await process.stdin.drain()


async def test_grant_is_revoked_after_a_hard_kill_and_restart(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    env = _environment(fresh_sandbox, tmp_path)
    async with _leash(env, console=True) as first:
        await _read_until(first, READY)
        await _say(
            first, "as dev", "request support-triage-agent s3-read for 4s because restart drill"
        )
        request_id = REQUEST_ID.search(await _read_until(first, "is waiting for approval"))
        assert request_id
        await _say(first, "as owner-a", f"approve {request_id.group(1)}")
        grant_id = GRANT_ID.search(await _read_until(first, GRANT_ID))
        assert grant_id
        first.send_signal(signal.SIGKILL)  # no clean shutdown
        await first.wait()
    artefact = f"leash-grant-{grant_id.group(1)}"
    assert inline_policy(fresh_sandbox, "support-triage-agent", artefact) is not None

    engine = create_async_engine(env["LEASH_DATABASE_URL"])
    try:
        async with AsyncSession(engine) as session:
            grant = await session.get(Grant, grant_id.group(1))
            assert grant is not None
            assert grant.state == GrantState.ACTIVE
            expires_at = grant.expires_at
        await asyncio.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 1)
        assert inline_policy(fresh_sandbox, "support-triage-agent", artefact) is not None

        async with _leash(env, console=False) as second:
            await _read_until(second, READY)

            async def revoked() -> bool:
                async with AsyncSession(engine) as session:
                    current = await session.get(Grant, grant_id.group(1))
                    return current is not None and current.state == GrantState.REVOKED

            assert await eventually(revoked, within=5), "not revoked within 5 s of start"
            assert inline_policy(fresh_sandbox, "support-triage-agent", artefact) is None

        async with AsyncSession(engine) as session:
            events = (
                await session.exec(
                    select(AuditEvent.event_type).where(
                        col(AuditEvent.grant_id) == grant_id.group(1)
                    )
                )
            ).all()
        assert sorted(e for e in events if e.startswith("grant.")) == [
            "grant.applied",
            "grant.revoked",
        ]
    finally:
        await engine.dispose()
