"""Kill Leash while a grant is live, restart after its expiry: it is revoked at once, once."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.states import GrantState
from bot.store.tables import AuditEvent, Grant
from cloud.sandbox import Sandbox
from tests.e2e.helpers import GRANT_ID, REQUEST_ID, eventually, inline_policy
from tests.e2e.leash_process import READY, fast_policy, leash_process, read_until, say


def _environment(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        **sandbox.env,
        "LEASH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'leash.db'}",
        "LEASH_POLICY_FILE": str(fast_policy(tmp_path)),
        "LEASH_CLOUD": "aws",
        "LEASH_PORT": "0",
        "LEASH_SWEEP_SECONDS": "30",
    }


async def test_grant_is_revoked_after_a_hard_kill_and_restart(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    env = _environment(fresh_sandbox, tmp_path)
    async with leash_process(env, console=True) as first:
        await read_until(first, READY)
        await say(
            first, "as dev", "request support-triage-agent s3-read for 4s because restart drill"
        )
        request_id = REQUEST_ID.search(await read_until(first, "is waiting for approval"))
        assert request_id
        await say(first, "as owner-a", f"approve {request_id.group(1)}")
        grant_id = GRANT_ID.search(await read_until(first, GRANT_ID))
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

        async with leash_process(env, console=False) as second:
            await read_until(second, READY)

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


async def test_a_sigterm_while_starting_stops_leash_cleanly(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    env = _environment(fresh_sandbox, tmp_path)
    async with leash_process(env, console=False) as starting:
        # The scheduler is elected before discovery and before Leash says it is serving.
        await read_until(starting, "elected: this process runs the scheduler")
        starting.send_signal(signal.SIGTERM)
        assert starting.stdout is not None
        rest = (await asyncio.wait_for(starting.stdout.read(), timeout=30)).decode()
        assert await starting.wait() == 0, rest  # not killed by the signal (-15)
    assert "Traceback" not in rest
