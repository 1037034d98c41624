"""Revoke lag after expiry: with Leash running, and for grants that expired while it was down.

Run: `python -m bench.revoke_lag [--n 20]` (`make bench`).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bench.environment import describe
from bench.grant_latency import approve_one, bench_rules, owned_roles, reset_schema
from bench.report import print_table, spread, write
from bot.app import Leash, build
from bot.config import Settings
from bot.domain.states import GrantState
from bot.store.tables import Grant
from cloud.sandbox import Sandbox, SeededIdentity

SWEEP_SECONDS = 3600.0  # the backstop sweep out of the way: this measures the timers
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.1


def start_leash(url: str, sandbox: Sandbox) -> Leash:
    settings = Settings(database_url=url, sweep_seconds=SWEEP_SECONDS)
    return build(settings, sandbox=sandbox, rules=bench_rules())


async def approve_batch(
    leash: Leash, roles: Sequence[SeededIdentity], n: int, shortest: int
) -> dict[str, datetime]:
    """Approve `n` grants lasting shortest..shortest+3 s, across roles; return their expiries."""
    expires: dict[str, datetime] = {}
    for i in range(n):
        duration = timedelta(seconds=shortest + i % 4)
        grant, _ = await approve_one(leash, roles[i % len(roles)], duration)
        expires[grant.id] = grant.expires_at
    return expires


async def revoked_at(url: str, ids: Sequence[str]) -> dict[str, datetime]:
    """Wait until every grant in `ids` is revoked (or WAIT_SECONDS); return revoked_at by id."""
    engine = create_async_engine(url)  # plain engine, so reads do not take Leash's write lock
    found: dict[str, datetime] = {}
    deadline = time.monotonic() + WAIT_SECONDS
    try:
        async with AsyncSession(engine) as session:
            while len(found) < len(ids) and time.monotonic() < deadline:
                rows = await session.exec(
                    select(Grant.id, Grant.state, Grant.revoked_at).where(col(Grant.id).in_(ids))
                )
                for grant_id, state, when in rows.all():
                    if state == GrantState.REVOKED and when is not None:
                        found[grant_id] = when
                await session.commit()
                await asyncio.sleep(POLL_SECONDS)
    finally:
        await engine.dispose()
    if len(found) < len(ids):
        raise RuntimeError(f"{len(ids) - len(found)} grant(s) not revoked in {WAIT_SECONDS} s")
    return found


def lags(revoked: dict[str, datetime], since: dict[str, datetime]) -> list[float]:
    return [(revoked[g] - since[g]).total_seconds() for g in since]


async def run(n: int, shortest: int, down_shortest: int, url: str) -> dict[str, Any]:
    await reset_schema(url)
    sandbox = Sandbox.start()
    try:
        leash = start_leash(url, sandbox)
        try:
            await leash.start(scheduler=True, discover=True)
            roles = owned_roles(sandbox)
            running = await approve_batch(leash, roles, n, shortest)
            running_revoked = await revoked_at(url, list(running))
            down = await approve_batch(leash, roles, n, down_shortest)
        finally:
            await leash.close()  # a clean stop: the timers go, the grants stay active
        stopped = datetime.now(UTC)
        early = [g for g, when in down.items() if when <= stopped]
        if early:
            raise RuntimeError(
                f"{len(early)} grant(s) expired before the stop: raise --down-shortest"
            )
        await asyncio.sleep((max(down.values()) - stopped).total_seconds() + 1)
        restarted = datetime.now(UTC)
        leash = start_leash(url, sandbox)
        try:
            await leash.start(scheduler=True, discover=False)  # `leash serve` discovers after
            ready = datetime.now(UTC)
            down_revoked = await revoked_at(url, list(down))
        finally:
            await leash.close()
    finally:
        sandbox.stop()
    ms = 1000.0
    return {
        "parameters": {
            "n": n,
            "durations_s": f"{shortest}..{shortest + 3}",
            "down_durations_s": f"{down_shortest}..{down_shortest + 3}",
            "sweep_seconds": SWEEP_SECONDS,
            "restart": "in process: Leash.close(), then a new bot.app.build on the same SQLite "
            "file and sandbox, start(scheduler=True, discover=False) as `leash serve` does",
        },
        "running_lag_ms": spread([s * ms for s in lags(running_revoked, running)]),
        "restart": {
            "down_s": round((restarted - stopped).total_seconds(), 3),
            "start_to_ready_ms": round((ready - restarted).total_seconds() * ms, 1),
            "lag_from_expiry_ms": spread([s * ms for s in lags(down_revoked, down)]),
            "lag_from_restart_ms": spread(
                [(down_revoked[g] - restarted).total_seconds() * ms for g in down]
            ),
            "lag_from_ready_ms": spread(
                [(down_revoked[g] - ready).total_seconds() * ms for g in down]
            ),
        },
        "environment": describe(url, ("apscheduler", "sqlalchemy", "boto3", "moto")),
    }


def print_report(report: dict[str, Any]) -> None:
    params, restart = report["parameters"], report["restart"]
    print(
        f"revoke lag — {params['n']} grants of {params['durations_s']} s (running) and "
        f"{params['down_durations_s']} s (expiring while down), "
        f"revoked_at as Leash recorded it, ms"
    )
    rows = [
        ("running: revoked_at - expires_at", report["running_lag_ms"]),
        ("after restart: revoked_at - expires_at", restart["lag_from_expiry_ms"]),
        ("after restart: revoked_at - restart began", restart["lag_from_restart_ms"]),
        ("after restart: revoked_at - start() returned", restart["lag_from_ready_ms"]),
    ]
    print_table(
        ("", "n", "p50", "p95", "max"),
        [(label, s["n"], s["p50"], s["p95"], s["max"]) for label, s in rows],
    )
    print(
        f"Leash was down {restart['down_s']} s; restart to start() returned: "
        f"{restart['start_to_ready_ms']} ms ({params['restart']})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.revoke_lag", description=__doc__)
    parser.add_argument("--n", type=int, default=20, help="grants per phase (20)")
    parser.add_argument("--shortest", type=int, default=2, help="shortest grant, s (2; +0..3)")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument(
        "--down-shortest",
        type=int,
        default=12,
        help="shortest grant of the restart phase, s (12): all are approved before the stop",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="leash-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'leash.db'}"
        report = asyncio.run(run(args.n, args.shortest, args.down_shortest, url))
    print_report(report)
    write("revoke_lag", report, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
