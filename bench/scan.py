"""The nightly usage scan on the sandbox's moto server: Leash's scan next to the raw calls.

Leash's scan is UsageScanner over every discovered identity (Access Advisor jobs polled,
policies read, findings judged and stored in the database). The floor is the same two Access
Advisor calls per role made directly with boto3 from a thread pool of the same size, without
reading policies or storing anything.

Run: `python -m bench.scan [--accounts 100] [--roles 100] [--quick]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from bench.cold_start import status_mib
from bench.discovery import SETUP_WORKERS, TO_THREAD_WORKERS, max_rss_mib, populate
from bench.environment import describe
from bot.app import build
from bot.config import Settings
from cloud.aws import AwsProvider
from cloud.sandbox import ACCESS_KEY_ID, SECRET_ACCESS_KEY, Sandbox, ServiceUse
from cloud.sandbox.aws.cross_account import ORGANIZATION_ACCESS_ROLE
from cloud.sandbox.aws.seed import READ_ROLE
from tests.conftest import make_rules

RESULTS = Path(__file__).parent / "results" / "scan.json"
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:ListBucket", "bedrock:InvokeModel", "sqs:*"],
                "Resource": "*",
            }
        ],
    }
)


class Counter:
    """Counts HTTP attempts sent by the clients of sessions it is registered on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0

    def __call__(self, **_: Any) -> None:
        with self._lock:
            self.calls += 1


def _session(counter: Counter, region: str) -> boto3.Session:
    session = boto3.Session(
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY, region_name=region
    )
    session.events.register("before-send", counter)
    return session


def _member_iam(sandbox: Sandbox, account: str) -> Any:
    config = Config(retries={"mode": "standard", "max_attempts": 1})
    session = sandbox.session()
    sts = session.client("sts", endpoint_url=sandbox.endpoint_url, config=config)
    if account == sts.get_caller_identity()["Account"]:
        return session.client("iam", endpoint_url=sandbox.endpoint_url, config=config)
    credentials = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{ORGANIZATION_ACCESS_ROLE}",
        RoleSessionName="leash-bench",
    )["Credentials"]
    return session.client(
        "iam",
        endpoint_url=sandbox.endpoint_url,
        config=config,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def grant_and_use(sandbox: Sandbox, accounts: Sequence[str], roles: int) -> list[str]:
    """Give every agent role a policy, and half of them recent use; return the role ARNs."""
    now = datetime.now(UTC)
    # Clients are built here, in one thread (boto3 sessions are not thread-safe); used in many.
    clients = [(account, _member_iam(sandbox, account)) for account in accounts]

    def one_account(job: tuple[str, Any]) -> list[str]:
        account, iam = job
        arns: list[str] = []
        for i in range(roles):
            name = f"agent-{i:04d}"
            iam.put_role_policy(RoleName=name, PolicyName="agent-access", PolicyDocument=POLICY)
            arns.append(f"arn:aws:iam::{account}:role/{name}")
        return arns

    with ThreadPoolExecutor(SETUP_WORKERS, thread_name_prefix="setup") as pool:
        arns = [arn for batch in pool.map(one_account, clients) for arn in batch]
    for i, arn in enumerate(arns):
        if i % 2 == 0:
            sandbox.activity.record_use(
                arn, ServiceUse("bedrock", now, {"bedrock:InvokeModel": now})
            )
    return arns


class RssSampler:
    """The rise of this process's VmRSS above its value on entry, sampled every 0.1 s."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._start = status_mib(os.getpid(), "VmRSS")
        self._peak = self._start
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self._peak = max(self._peak, status_mib(os.getpid(), "VmRSS"))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, status_mib(os.getpid(), "VmRSS"))

    @property
    def growth_mib(self) -> float:
        return self._peak - self._start


async def leash_scan(sandbox: Sandbox, counter: Counter) -> dict[str, Any]:
    """Discovery then the scan, through Leash, on a fresh SQLite database."""
    folder = tempfile.mkdtemp(prefix="leash-bench-scan-")
    settings = Settings(database_url=f"sqlite+aiosqlite:///{folder}/leash.db")
    leash = build(settings, sandbox=sandbox, rules=make_rules())
    leash.providers["aws"] = AwsProvider(
        session_factory=lambda: _session(counter, sandbox.region),
        endpoint_url=sandbox.endpoint_url,
        region=sandbox.region,
        read_role_name=READ_ROLE,
        max_attempts=1,
        trace_provenance=False,
        usage_poll_interval=0.05,
    )
    try:
        await leash.start(scheduler=False, discover=False)
        started = time.perf_counter()
        found = await leash.lifecycle.inventory.refresh()
        discovered_s = time.perf_counter() - started
        calls_before = counter.calls
        # Not traced: tracemalloc slowed the scan threefold. Memory is how far the process's
        # resident set rises above where it started, sampled (moto shares the process).
        with RssSampler() as rss:
            started = time.perf_counter()
            summary = await leash.lifecycle.least_privilege.scanner.scan()
            scan_s = time.perf_counter() - started
        rss_growth = rss.growth_mib
    finally:
        await leash.close()
    scanned = max(summary.scanned, 1)
    return {
        "identities": found.found,
        "discovery_s": round(discovered_s, 2),
        "discovery_calls": calls_before,
        "discovery_calls_per_identity": round(calls_before / max(found.found, 1), 2),
        "scanned": summary.scanned,
        "failed": len(summary.failures),
        "unused_total": summary.unused_total,
        "scan_s": round(scan_s, 2),
        "calls": counter.calls - calls_before,
        "calls_per_identity": round((counter.calls - calls_before) / scanned, 2),
        "identities_per_s": round(summary.scanned / scan_s, 1) if scan_s else None,
        "peak_rss_growth_mib": round(rss_growth, 1),
    }


def raw_scan(sandbox: Sandbox, arns: Sequence[str], counter: Counter) -> dict[str, Any]:
    """The floor: Generate + Get for each role straight from boto3, same thread count."""
    by_account: dict[str, list[str]] = {}
    for arn in arns:
        by_account.setdefault(arn.split(":")[4], []).append(arn)
    clients = {account: _member_iam(sandbox, account) for account in by_account}
    for client in clients.values():
        client.meta.events.register("before-send", counter)

    def one(arn: str) -> None:
        iam = clients[arn.split(":")[4]]
        job = iam.generate_service_last_accessed_details(Arn=arn, Granularity="ACTION_LEVEL")
        iam.get_service_last_accessed_details(JobId=job["JobId"])

    started = time.perf_counter()
    with ThreadPoolExecutor(TO_THREAD_WORKERS) as pool:
        list(pool.map(one, arns))
    wall = time.perf_counter() - started
    return {
        "scanned": len(arns),
        "scan_s": round(wall, 2),
        "calls": counter.calls,
        "calls_per_identity": round(counter.calls / max(len(arns), 1), 2),
        "identities_per_s": round(len(arns) / wall, 1) if wall else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scan", description=__doc__)
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--roles", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 accounts x 20 roles")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.accounts, args.roles = 5, 20
    sandbox = Sandbox.start(seed=False)
    try:
        estate = populate(sandbox, args.accounts, args.roles)
        arns = grant_and_use(sandbox, (estate.management, *estate.members), args.roles)
        leash = asyncio.run(leash_scan(sandbox, Counter()))
        raw = raw_scan(sandbox, arns, Counter())
    finally:
        sandbox.stop()
    rows = [("Leash scan (UsageScanner)", leash), ("raw Access Advisor calls", raw)]
    print(
        f"Nightly scan: {args.accounts} accounts x {args.roles} roles "
        f"({leash['identities']} identities)"
    )
    print(
        f"{'':28} {'scanned':>8} {'wall s':>8} {'ids/s':>8} {'calls':>8} {'calls/id':>9} "
        f"{'+RSS MiB':>9}"
    )
    for label, row in rows:
        print(
            f"{label:28} {row['scanned']:>8} {row['scan_s']:>8} {row['identities_per_s']!s:>8} "
            f"{row['calls']:>8} {row['calls_per_identity']:>9} "
            f"{row.get('peak_rss_growth_mib', '-')!s:>9}"
        )
    print(
        f"discovery before the scan (inventory refresh, provenance off): {leash['discovery_s']} s,"
        f" {leash['discovery_calls_per_identity']} calls/identity; max RSS {max_rss_mib():.0f} MiB"
        " (moto included: same process)"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "benchmark": "scan",
                "at": datetime.now(UTC).isoformat(),
                "accounts": args.accounts,
                "roles_per_account": args.roles,
                "leash": leash,
                "raw": raw,
                "max_rss_mib": round(max_rss_mib(), 1),
                "environment": describe("sqlite+aiosqlite://", ("boto3", "moto", "sqlmodel")),
            },
            indent=2,
        )
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
