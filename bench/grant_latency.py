"""Grant latency against the sandbox's moto server: Leash's approve and expiry vs raw boto3.

Run: `python -m bench.grant_latency [--n 50] [--quick] [--database-url URL]` (`make bench`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from sqlalchemy import Connection, MetaData
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bench.environment import describe
from bot.access.drafting import RequestInput
from bot.app import Leash, build
from bot.config import Settings
from bot.core.context import identity_ref
from bot.domain.actors import Actor
from bot.domain.rules import Rules
from bot.domain.states import ActorKind, GrantState
from bot.store.tables import Grant, Identity
from cloud.aws.policy_document import compact, grant_document
from cloud.base import GrantSpec, IdentityKind, grant_artefact_name
from cloud.sandbox import Sandbox, SeededIdentity

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

RESULTS = Path(__file__).parent / "results" / "grant_latency.json"
ACTIONS = ("s3:GetObject", "s3:ListBucket")
RESOURCES = ("arn:aws:s3:::leash-bench", "arn:aws:s3:::leash-bench/*")
REQUESTER = Actor(name="bench-dev", kind=ActorKind.USER, origin="bench")
POLL_SECONDS = 0.02
# The sweep is the backstop; pushed out of the way so expiry measures the per-grant timer.
SWEEP_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Row:
    operation: str
    n: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    samples_ms: tuple[float, ...]


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (the `inclusive` method of statistics.quantiles)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def row(operation: str, seconds: Sequence[float]) -> Row:
    ms = [s * 1000 for s in seconds]
    return Row(
        operation=operation,
        n=len(ms),
        p50_ms=percentile(ms, 50),
        p99_ms=percentile(ms, 99),
        mean_ms=statistics.fmean(ms) if ms else math.nan,
        max_ms=max(ms, default=math.nan),
        samples_ms=tuple(round(v, 3) for v in ms),
    )


async def reset_schema(url: str) -> None:
    """Drop every table in the database at `url`, so migrations start from nothing."""

    def drop(connection: Connection) -> None:
        existing = MetaData()
        existing.reflect(connection)
        existing.drop_all(connection)

    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(drop)
    finally:
        await engine.dispose()


def bench_rules() -> Rules:
    return Rules.model_validate(
        {
            "admins": ["secops"],
            "grants": {"min_duration": "1s", "expiry_warning": "1s"},
        }
    )


def owned_roles(sandbox: Sandbox) -> list[SeededIdentity]:
    return [i for i in sandbox.identities if i.kind is IdentityKind.ROLE and i.agent and i.owner]


async def approve_one(
    leash: Leash, target: SeededIdentity, duration: timedelta
) -> tuple[Grant, float]:
    """Submit (untimed), then time approve() until it returns with the grant active."""
    assert target.owner is not None
    request = await leash.lifecycle.requests.submit(
        RequestInput(
            identity=target.arn,
            duration=duration,
            reason="grant latency benchmark",
            actions=ACTIONS,
            resources=RESOURCES,
        ),
        actor=REQUESTER,
    )
    owner = Actor(name=target.owner, kind=ActorKind.USER, origin="bench")
    started = time.perf_counter()
    result = await leash.lifecycle.approve(request.id, actor=owner)
    elapsed = time.perf_counter() - started
    if result.grant is None or result.grant.state != GrantState.ACTIVE:
        state = result.grant.state if result.grant else "no grant"
        raise RuntimeError(f"approve of {request.id} left the grant {state}")
    return result.grant, elapsed


async def bench_approve(
    leash: Leash, target: SeededIdentity, n: int, warmup: int
) -> tuple[list[float], list[float], list[float]]:
    """approve→active, provider.grant alone, and a manual revoke, on one role, one at a time."""
    approve: list[float] = []
    cloud_only: list[float] = []
    revoke: list[float] = []
    provider = leash.providers["aws"]
    for i in range(warmup + n):
        grant, elapsed = await approve_one(leash, target, timedelta(hours=1))
        async with leash.context.sessions() as session:
            identity = await session.get(Identity, grant.identity_id)
        assert identity is not None
        spec = GrantSpec(
            grant_id=grant.id,
            actions=tuple(grant.actions),
            resources=tuple(grant.resources),
            expires_at=grant.expires_at,
            deny_actions=tuple(grant.deny_actions),
        )
        started = time.perf_counter()
        await provider.grant(identity_ref(identity), spec)  # rewrites the same policy
        cloud = time.perf_counter() - started
        started = time.perf_counter()
        revoked = await leash.lifecycle.grants.revoke(grant.id, reason="benchmark")
        undo = time.perf_counter() - started
        if revoked.state != GrantState.REVOKED:
            raise RuntimeError(f"revoke of {grant.id} left it {revoked.state}")
        if i >= warmup:  # keeps one grant at a time, so the role's inline policies stay constant
            approve.append(elapsed)
            cloud_only.append(cloud)
            revoke.append(undo)
    return approve, cloud_only, revoke


def bench_raw(sandbox: Sandbox, role: str, n: int, warmup: int) -> tuple[list[float], list[float]]:
    """put_role_policy / delete_role_policy of an equivalent document with plain boto3."""
    config = Config(region_name=sandbox.region, retries={"mode": "standard", "max_attempts": 3})
    iam: IAMClient = sandbox.session().client(
        "iam", endpoint_url=sandbox.endpoint_url, config=config
    )
    put: list[float] = []
    delete: list[float] = []
    for i in range(warmup + n):
        grant_id = f"g-raw{i:05d}"
        spec = GrantSpec(
            grant_id=grant_id,
            actions=ACTIONS,
            resources=RESOURCES,
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
        document = compact(grant_document(spec))
        name = grant_artefact_name(grant_id)
        started = time.perf_counter()
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=document)
        put_s = time.perf_counter() - started
        started = time.perf_counter()
        iam.delete_role_policy(RoleName=role, PolicyName=name)
        delete_s = time.perf_counter() - started
        if i >= warmup:
            put.append(put_s)
            delete.append(delete_s)
    return put, delete


async def bench_expiry(
    leash: Leash, url: str, targets: Sequence[SeededIdentity], batch: int, seconds: int
) -> tuple[list[float], list[float], int]:
    """Grants of `seconds`..`seconds+3` s across roles; poll the DB for `revoked` every 20 ms.

    Returns (observed delays, delays to the recorded revoked_at, artefacts left in the cloud).
    """
    grants: list[Grant] = []
    for i in range(batch):
        duration = timedelta(seconds=seconds + i % 4)
        grant, _ = await approve_one(leash, targets[i % len(targets)], duration)
        grants.append(grant)
    expires = {g.id: g.expires_at for g in grants}
    observed: dict[str, float] = {}
    recorded: dict[str, float] = {}
    deadline = max(expires.values()) + timedelta(seconds=30)
    # A separate plain engine: on SQLite, Leash's engine takes the write lock for every read.
    observer = create_async_engine(url)
    try:
        async with AsyncSession(observer) as session:
            while len(observed) < len(expires) and datetime.now(UTC) < deadline:
                rows = await session.exec(
                    select(Grant.id, Grant.state, Grant.revoked_at).where(
                        col(Grant.id).in_(list(expires.keys() - observed.keys()))
                    )
                )
                seen = datetime.now(UTC)
                for grant_id, state, revoked_at in rows.all():
                    if state == GrantState.REVOKED:
                        observed[grant_id] = (seen - expires[grant_id]).total_seconds()
                        assert revoked_at is not None
                        recorded[grant_id] = (revoked_at - expires[grant_id]).total_seconds()
                await session.commit()  # end the read transaction so the next poll sees new rows
                await asyncio.sleep(POLL_SECONDS)
    finally:
        await observer.dispose()
    if len(observed) < len(expires):
        missing = sorted(expires.keys() - observed.keys())
        raise RuntimeError(f"not revoked 30 s after expiry: {', '.join(missing)}")
    left = 0
    provider = leash.providers["aws"]
    async with leash.context.sessions() as session:
        identities = {g.identity_id: await session.get(Identity, g.identity_id) for g in grants}
    for identity in identities.values():
        assert identity is not None
        artefacts = await provider.grant_artefacts(identity_ref(identity))
        left += sum(1 for a in artefacts if a.grant_id in expires)
    return list(observed.values()), list(recorded.values()), left


def print_table(rows: Sequence[Row], notes: Sequence[str]) -> None:
    header = f"{'operation':<44} {'n':>4} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9} {'max ms':>9}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.operation:<44} {r.n:>4} {r.p50_ms:>9.2f} {r.p99_ms:>9.2f} "
            f"{r.mean_ms:>9.2f} {r.max_ms:>9.2f}"
        )
    for note in notes:
        print(note)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.grant_latency", description=__doc__)
    parser.add_argument("--n", type=int, default=50, help="approvals and raw calls (default 50)")
    parser.add_argument("--expiry-n", type=int, default=20, help="grants left to expire (20)")
    parser.add_argument(
        "--expiry-seconds", type=int, default=2, help="shortest grant, in s (durations cycle +0..3)"
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations first (3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: n=5, expiry-n=5, warmup=1")
    parser.add_argument(
        "--database-url",
        help="e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/leash_bench; "
        "EVERY TABLE in it is dropped first (default: a temporary SQLite file)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON file ({RESULTS})")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.expiry_n, args.warmup = 5, 5, 1
    if args.n < 1 or args.expiry_n < 1 or args.warmup < 0 or args.expiry_seconds < 1:
        parser.error("--n and --expiry-n must be >= 1, --expiry-seconds >= 1, --warmup >= 0")
    return args


async def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    await reset_schema(url)
    sandbox = Sandbox.start()
    settings = Settings(database_url=url, sweep_seconds=SWEEP_SECONDS)
    leash = build(settings, sandbox=sandbox, rules=bench_rules())
    try:
        await leash.start(scheduler=True, discover=True)
        roles = owned_roles(sandbox)
        home = sandbox.accounts[0].id
        target = next(r for r in roles if r.account.id == home)  # raw boto3 reaches it directly
        approve, cloud_only, revoke = await bench_approve(leash, target, args.n, args.warmup)
        put, delete = await asyncio.to_thread(bench_raw, sandbox, target.name, args.n, args.warmup)
        observed, recorded, left = await bench_expiry(
            leash, url, roles, args.expiry_n, args.expiry_seconds
        )
    finally:
        await leash.close()
        sandbox.stop()
    rows = [
        row("leash approve -> grant active", approve),
        row("  aws provider.grant alone (list+get+put)", cloud_only),
        row("raw boto3 put_role_policy", put),
        row("leash revoke (manual) -> revoked", revoke),
        row("raw boto3 delete_role_policy", delete),
        row("expiry -> revoked seen in DB (20 ms poll)", observed),
        row("expiry -> revoked_at recorded", recorded),
    ]
    by_name = {r.operation: r for r in rows}
    overhead = {
        "approve_minus_put_p50_ms": by_name["leash approve -> grant active"].p50_ms
        - by_name["raw boto3 put_role_policy"].p50_ms,
        "revoke_minus_delete_p50_ms": by_name["leash revoke (manual) -> revoked"].p50_ms
        - by_name["raw boto3 delete_role_policy"].p50_ms,
    }
    return {
        "benchmark": "grant_latency",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": describe(url, ("boto3", "moto", "sqlalchemy", "apscheduler")),
        "parameters": {
            "n": args.n,
            "warmup": args.warmup,
            "expiry_n": args.expiry_n,
            "expiry_seconds": f"{args.expiry_seconds}..{args.expiry_seconds + 3}",
            "poll_ms": POLL_SECONDS * 1000,
            "sweep_seconds": SWEEP_SECONDS,
            "approve_role": target.arn,
        },
        "rows": [asdict(r) for r in rows],
        "overhead": overhead,
        "expiry_artefacts_left": left,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="leash-bench-") as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'leash.db'}"
        report = asyncio.run(run(args, url))
    rows = [Row(**{**r, "samples_ms": tuple(r["samples_ms"])}) for r in report["rows"]]
    env = report["environment"]
    print(
        f"grant latency — {env['database_kind']} ({env['database_driver']}), moto server on "
        f"loopback, n={args.n}, expiry batch={args.expiry_n}, python {env['python']}"
    )
    overhead = report["overhead"]
    print_table(
        rows,
        [
            f"overhead approve p50 - put p50    = {overhead['approve_minus_put_p50_ms']:.2f} ms",
            f"overhead revoke  p50 - delete p50 = {overhead['revoke_minus_delete_p50_ms']:.2f} ms",
            f"grant policies left after expiry  = {report['expiry_artefacts_left']}",
        ],
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 1 if report["expiry_artefacts_left"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
