"""Kill Leash (SIGKILL) at every step of a grant's life, restart it, and check the end state.

The restart comes after the grant's expiry. Every step ends with nothing of the grant left in
the cloud and an intact audit chain; a grant that reached the cloud is revoked, with exactly one
`grant.applied` and one `grant.revoked` event. The table says, per step, what the record says
at the crash, how it ends, and how many times each process wrote and deleted
`leash-grant-<id>`.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.crash_drill import ENVIRONMENT_VARIABLE, STEPS
from bot.domain.states import GrantState
from bot.store import audit
from bot.store.tables import AuditEvent, Grant
from cloud.sandbox import Sandbox
from tests.e2e.helpers import REQUEST_ID, eventually, inline_policy_names
from tests.e2e.leash_process import READY, fast_policy, leash_process, read_until, say

ROLE = "support-triage-agent"
GRANT_SECONDS = 2
# Short enough that the restarted process resumes a claim the killed one held within seconds.
LEASE = "1s"


@dataclass(frozen=True, slots=True)
class Crash:
    """What a crash at one step leaves behind, and what the restart has to do about it."""

    step: str
    state_at_crash: GrantState
    writes: tuple[int, int]  # PutRolePolicy of the grant: before the crash, after the restart
    deletes: tuple[int, int]  # DeleteRolePolicy of the grant: before the crash, after the restart
    events: tuple[str, ...] = ("grant.applied", "grant.revoked")
    adopted: bool = False  # recorded as applied by the restart, from what it found in the cloud
    artefact_found: bool = True  # did the recorded revoke find the policy still there?


CRASHES = (
    # Never reached the cloud: the resumed apply is too late, fails, and cleans up (a no-op).
    Crash("approved", GrantState.APPLYING, (0, 0), (0, 1), events=("grant.apply_failed",)),
    # In the cloud while the record says applying (live, so reconcile keeps it): the resumed
    # apply finds it there, records it as applied, and revokes it.
    Crash("granted-in-cloud", GrantState.APPLYING, (1, 0), (0, 1), adopted=True),
    # Active with no timer: the restart re-arms timers from the database and revokes.
    Crash("grant-committed", GrantState.ACTIVE, (1, 0), (0, 1)),
    Crash("timer-armed", GrantState.ACTIVE, (1, 0), (0, 1)),
    # Claimed for revocation: the sweep takes the claim over once its lease runs out.
    Crash("revoke-claimed", GrantState.REVOKING, (1, 0), (0, 1)),
    # Gone from the cloud, still revoking in the record: the repeated delete finds nothing.
    Crash("revoked-in-cloud", GrantState.REVOKING, (1, 0), (1, 1), artefact_found=False),
    # Everything done before the kill: the restart has nothing to do.
    Crash("revoke-committed", GrantState.REVOKED, (1, 0), (1, 0)),
)


def test_the_table_covers_every_crash_point() -> None:
    assert tuple(crash.step for crash in CRASHES) == STEPS


def _policy(directory: Path) -> Path:
    path = fast_policy(directory)
    text = path.read_text()
    with_lease = re.sub(r'(?m)^min_duration = "1s".*$', rf'\g<0>\nlease = "{LEASE}"', text)
    assert f'lease = "{LEASE}"' in with_lease
    path.write_text(with_lease)
    return path


def _environment(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        **sandbox.env,
        "LEASH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'leash.db'}",
        "LEASH_POLICY_FILE": str(_policy(tmp_path)),
        "LEASH_CLOUD": "aws",
        "LEASH_PORT": "0",
        "LEASH_SWEEP_SECONDS": "1",
    }
    env.pop(ENVIRONMENT_VARIABLE, None)
    return env


def _grant_calls(sandbox: Sandbox, operation: str, grant_id: str) -> list[int]:
    """Indexes (in the order served) of Leash's `operation` calls on `leash-grant-<id>`."""
    name = f"leash-grant-{grant_id}"
    return [
        index
        for index, call in enumerate(sandbox.moto.calls())
        if call.operation == operation and call.params.get("PolicyName") == name and call.by_leash
    ]


def _split(indexes: list[int], mark: int) -> tuple[int, int]:
    return sum(1 for i in indexes if i < mark), sum(1 for i in indexes if i >= mark)


async def _only_grant(engine: AsyncEngine) -> Grant:
    async with AsyncSession(engine) as session:
        grants = (await session.exec(select(Grant))).all()
    assert len(grants) == 1, grants
    return grants[0]


async def _crash(env: dict[str, str], step: str) -> None:
    """Request and approve a grant on a Leash that kills itself at `step`."""
    async with leash_process({**env, ENVIRONMENT_VARIABLE: step}, console=True) as doomed:
        # The banner, after READY, says the drill is armed.
        await read_until(doomed, f"Failure drill: {ENVIRONMENT_VARIABLE}={step}:", within=90)
        await say(doomed, "as dev", f"request {ROLE} s3-read for {GRANT_SECONDS}s because drill")
        request_id = REQUEST_ID.search(await read_until(doomed, "is waiting for approval"))
        assert request_id
        await say(doomed, "as owner-a", f"approve {request_id.group(1)}")
        # On the revoke side the grant's expiry brings the revoke, and the crash with it.
        assert doomed.stdout is not None
        output = (await asyncio.wait_for(doomed.stdout.read(), timeout=20)).decode()
        assert await doomed.wait() == -signal.SIGKILL, output
        assert f"{ENVIRONMENT_VARIABLE}: killing Leash at {step} (grant g-" in output


async def _recover(env: dict[str, str], engine: AsyncEngine, grant_id: str) -> None:
    """Run Leash again (no crash point) until the grant has ended; stop it cleanly."""
    async with leash_process(env, console=False) as second:
        started = await read_until(second, READY, within=90)
        assert second.stdout is not None
        rest = asyncio.create_task(second.stdout.read())

        async def settled() -> bool:
            async with AsyncSession(engine) as session:
                grant = await session.get(Grant, grant_id)
            return grant is not None and grant.state in (GrantState.REVOKED, GrantState.FAILED)

        revoked = await eventually(settled, within=10, step=0.2)
        second.send_signal(signal.SIGTERM)
        output = started + (await asyncio.wait_for(rest, timeout=30)).decode()
        assert revoked, f"not revoked after the restart:\n{output}"
        assert await second.wait() == 0, output


@pytest.mark.parametrize("crash", CRASHES, ids=[crash.step for crash in CRASHES])
async def test_a_crash_at_any_step_ends_with_the_grant_revoked_once(
    crash: Crash, fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    env = _environment(fresh_sandbox, tmp_path)
    engine = create_async_engine(env["LEASH_DATABASE_URL"])
    try:
        await _crash(env, crash.step)
        mark = len(fresh_sandbox.moto.calls())
        grant = await _only_grant(engine)
        assert grant.state == crash.state_at_crash
        artefact = f"leash-grant-{grant.id}"
        in_cloud = artefact in inline_policy_names(fresh_sandbox, ROLE)
        writes_before, deletes_before = crash.writes[0], crash.deletes[0]
        assert in_cloud == (writes_before > deletes_before)

        # Restart once the grant is due, so the recovery does not depend on how fast it is.
        await asyncio.sleep(max(0.0, (grant.expires_at - datetime.now(UTC)).total_seconds()))
        await _recover(env, engine, grant.id)

        grant = await _only_grant(engine)
        applied = "grant.applied" in crash.events
        assert grant.state == (GrantState.REVOKED if applied else GrantState.FAILED)
        assert (grant.applied_at is not None) is applied
        assert (grant.revoked_at is not None) is applied
        # Nothing of the grant is left in the cloud, and nothing else was needed to get there.
        assert [
            name for name in inline_policy_names(fresh_sandbox, ROLE) if "leash-grant-" in name
        ] == []
        assert _split(_grant_calls(fresh_sandbox, "PutRolePolicy", grant.id), mark) == crash.writes
        assert (
            _split(_grant_calls(fresh_sandbox, "DeleteRolePolicy", grant.id), mark) == crash.deletes
        )
        async with AsyncSession(engine) as session:
            events = (
                await session.exec(
                    select(AuditEvent)
                    .where(col(AuditEvent.event_type).startswith("grant."))
                    .order_by(col(AuditEvent.seq))
                )
            ).all()
            chain = await audit.verify(
                session=session, key=audit.AuditKey.of(os.environ["LEASH_AUDIT_KEY"])
            )
        assert [(e.event_type, e.grant_id) for e in events] == [(t, grant.id) for t in crash.events]
        if applied:
            assert events[0].detail.get("adopted", False) is crash.adopted
            assert events[1].detail["artefact_found"] is crash.artefact_found
        assert chain.ok, chain
    finally:
        await engine.dispose()
