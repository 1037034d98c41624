"""AWS calls per grant and per revoke, from the sandbox's moto call log, next to raw boto3.

Run: `python -m bench.cloud_writes [--n 20]` (`make bench`).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.environment import describe
from bench.grant_latency import approve_one, bench_raw, bench_rules, owned_roles, reset_schema
from bench.report import print_table, spread, write
from bot.app import build
from bot.config import Settings
from bot.domain.states import GrantState
from cloud.sandbox import Sandbox
from cloud.sandbox.aws.moto_calls import MotoCall

READ_PREFIXES = ("Get", "List", "Describe", "Lookup", "Simulate", "Generate")
SWEEP_SECONDS = 3600.0  # out of the way: only the calls of approve and revoke are counted


def kind(call: MotoCall) -> str:
    """'auth' for STS, 'read' for Get/List/Describe-style operations, else 'write'."""
    if call.service == "sts":
        return "auth"
    return "read" if call.operation.startswith(READ_PREFIXES) else "write"


def take(sandbox: Sandbox) -> list[MotoCall]:
    """The calls Leash made since the last take."""
    calls = [c for c in sandbox.moto.calls() if c.by_leash]
    sandbox.moto.clear_calls()
    return calls


def per_operation(calls: Sequence[MotoCall], n: int) -> dict[str, dict[str, Any]]:
    counted = Counter((kind(c), f"{c.service}:{c.operation}") for c in calls)
    return {
        op: {"kind": k, "total": total, "per": round(total / n, 3)}
        for (k, op), total in sorted(counted.items())
    }


async def run(n: int, warmup: int, url: str) -> dict[str, Any]:
    await reset_schema(url)
    sandbox = Sandbox.start()
    leash = build(
        Settings(database_url=url, sweep_seconds=SWEEP_SECONDS),
        sandbox=sandbox,
        rules=bench_rules(),
    )
    grant_calls: list[MotoCall] = []
    revoke_calls: list[MotoCall] = []
    approve_s: list[float] = []
    revoke_s: list[float] = []
    try:
        await leash.start(scheduler=True, discover=True)
        roles = owned_roles(sandbox)
        for i in range(warmup + n):  # warm-up: clients and assumed-role credentials cached
            take(sandbox)
            grant, elapsed = await approve_one(leash, roles[i % len(roles)], timedelta(hours=1))
            granted = take(sandbox)
            started = time.perf_counter()
            revoked = await leash.lifecycle.grants.revoke(grant.id, reason="benchmark")
            undo = time.perf_counter() - started
            if revoked.state != GrantState.REVOKED:
                raise RuntimeError(f"revoke of {grant.id} left it {revoked.state}")
            if i >= warmup:
                grant_calls += granted
                revoke_calls += take(sandbox)
                approve_s.append(elapsed)
                revoke_s.append(undo)
        home = next(r for r in roles if r.account.id == sandbox.accounts[0].id)
        put, delete = await asyncio.to_thread(bench_raw, sandbox, home.name, n, warmup)
    finally:
        await leash.close()
        sandbox.stop()
    summary = {
        name: {k: round(sum(1 for c in calls if kind(c) == k) / n, 3) for k in KINDS}
        for name, calls in (("grant", grant_calls), ("revoke", revoke_calls))
    }
    return {
        "parameters": {
            "n": n,
            "warmup": warmup,
            "roles": len(roles),
            "read_prefixes": READ_PREFIXES,
        },
        "per_grant": summary["grant"],
        "per_revoke": summary["revoke"],
        "baseline_per_grant": {"write": 1, "read": 0, "auth": 0},
        "baseline_per_revoke": {"write": 1, "read": 0, "auth": 0},
        "grant_operations": per_operation(grant_calls, n),
        "revoke_operations": per_operation(revoke_calls, n),
        "latency_ms": {
            "leash approve -> active": spread([s * 1000 for s in approve_s]),
            "raw boto3 put_role_policy": spread([s * 1000 for s in put]),
            "leash revoke -> revoked": spread([s * 1000 for s in revoke_s]),
            "raw boto3 delete_role_policy": spread([s * 1000 for s in delete]),
        },
        "environment": describe(url, ("boto3", "moto", "sqlalchemy")),
    }


KINDS = ("write", "read", "auth")


def print_report(report: dict[str, Any]) -> None:
    n = report["parameters"]["n"]
    print(f"cloud calls per grant and per revoke — {n} grants over {report['parameters']['roles']}")
    print("roles (management and member accounts), counted from moto's call log (Leash's calls)")
    rows = [
        (
            f"per {what}",
            *(report[f"per_{what}"][k] for k in KINDS),
            report[f"baseline_per_{what}"]["write"],
        )
        for what in ("grant", "revoke")
    ]
    print_table(("", "writes", "reads", "sts", "raw boto3 writes"), rows)
    print()
    ops = [
        (f"{what}: {op}", v["kind"], v["per"])
        for what in ("grant", "revoke")
        for op, v in report[f"{what}_operations"].items()
    ]
    print_table(("operation", "kind", "per call"), ops)
    print()
    lat = [(k, v["n"], v["p50"], v["p95"], v["max"]) for k, v in report["latency_ms"].items()]
    print_table(("same run, ms", "n", "p50", "p95", "max"), lat)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cloud_writes", description=__doc__)
    parser.add_argument("--n", type=int, default=20, help="grants applied and revoked (20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed, uncounted first (3)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="leash-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'leash.db'}"
        report = asyncio.run(run(args.n, args.warmup, url))
    print_report(report)
    write("cloud_writes", report, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
