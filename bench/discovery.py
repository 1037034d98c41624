"""Discovery cost on the sandbox's moto server: AwsProvider.discover() over many accounts.

Run: `python -m bench.discovery [--accounts 100] [--roles 100] [--concurrency N] [--quick]`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import inspect
import json
import multiprocessing
import os
import resource
import sys
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import boto3
from botocore.config import Config

from cloud.aws.policy_document import trust_principals
from cloud.aws.provider import DISCOVERY_PERMISSIONS, AwsProvider
from cloud.base import DiscoveryResult
from cloud.sandbox import ACCESS_KEY_ID, SECRET_ACCESS_KEY, Sandbox
from cloud.sandbox.aws.cross_account import ORGANIZATION_ACCESS_ROLE
from cloud.sandbox.aws.seed import AGENT_TAG, OWNER_TAG, READ_ROLE, TEAM_TAG

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

RESULTS = Path(__file__).parent / "results" / "discovery.json"
ROOT = Path(__file__).resolve().parent.parent
# The provider, and the sandbox (its emulated CloudTrail answers provenance's lookups).
SOURCES = (ROOT / "cloud" / "aws", ROOT / "cloud" / "sandbox")
AGENT_SERVICE = "bedrock.amazonaws.com"
OWNERS = 7
TEAMS = 5
SETUP_WORKERS = 8
TOP_OPERATIONS = 8
MIB = 1024 * 1024
# The provider's own default, so that leaving --concurrency out measures what Leash runs.
DEFAULT_CONCURRENCY = int(inspect.signature(AwsProvider).parameters["max_concurrency"].default)
# asyncio.to_thread runs on the loop's default executor, ThreadPoolExecutor's default size.
TO_THREAD_WORKERS = min(32, (os.cpu_count() or 1) + 4)
COUNTING = (
    "botocore 'before-send' hook on the boto3 session the provider (or raw loop) uses, in a "
    "spawned worker process: one count per HTTP attempt reaching the moto server"
)

T = TypeVar("T")
RawMode = Literal["list_roles", "authorization_details"]


# Setup (untimed, in this process, against the sandbox's moto server).


@dataclass(frozen=True, slots=True)
class Estate:
    """The organization the setup created, and what discovery should find in it."""

    management: str
    members: tuple[str, ...]
    roles_per_account: int
    setup_seconds: float
    setup_calls: int

    @property
    def accounts(self) -> int:
        return 1 + len(self.members)

    @property
    def agents(self) -> int:
        return self.accounts * self.roles_per_account

    @property
    def expected(self) -> int:
        # Every member also has moto's OrganizationAccountAccessRole; LeashReadOnly is skipped.
        return self.agents + len(self.members)


def _trust(principal: Mapping[str, str]) -> str:
    statement = {"Effect": "Allow", "Principal": dict(principal), "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _create_roles(iam: IAMClient, roles: int, read_role_trust: str | None) -> int:
    """Create the read role (members only) and `roles` tagged agent roles; return the calls."""
    calls = 0
    if read_role_trust is not None:
        iam.create_role(RoleName=READ_ROLE, AssumeRolePolicyDocument=read_role_trust)
        statement = {"Effect": "Allow", "Action": list(DISCOVERY_PERMISSIONS), "Resource": "*"}
        iam.put_role_policy(
            RoleName=READ_ROLE,
            PolicyName="leash",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
        )
        calls += 2
    trust = _trust({"Service": AGENT_SERVICE})
    for i in range(roles):
        iam.create_role(
            RoleName=f"agent-{i:04d}",
            AssumeRolePolicyDocument=trust,
            Description="discovery benchmark agent",
            Tags=[
                {"Key": AGENT_TAG, "Value": "true"},
                {"Key": OWNER_TAG, "Value": f"owner-{i % OWNERS}"},
                {"Key": TEAM_TAG, "Value": f"team-{i % TEAMS}"},
            ],
        )
    return calls + roles


def populate(sandbox: Sandbox, accounts: int, roles: int) -> Estate:
    """Create the organization, its members, their read roles and every account's agents."""
    started = time.perf_counter()
    session = sandbox.session()
    config = Config(region_name=sandbox.region, retries={"mode": "standard", "max_attempts": 1})
    url = sandbox.endpoint_url
    organizations = session.client("organizations", endpoint_url=url, config=config)
    sts = session.client("sts", endpoint_url=url, config=config)
    organizations.create_organization(FeatureSet="ALL")
    management = sts.get_caller_identity()["Account"]
    read_role_trust = _trust({"AWS": f"arn:aws:iam::{management}:root"})
    jobs: list[tuple[IAMClient, str | None]] = [
        (session.client("iam", endpoint_url=url, config=config), None)
    ]
    members: list[str] = []
    for n in range(1, accounts):
        # moto completes CreateAccount at once (AWS needs DescribeCreateAccountStatus polling).
        status = organizations.create_account(
            Email=f"member-{n:04d}@leash.example", AccountName=f"member-{n:04d}"
        )["CreateAccountStatus"]
        members.append(status["AccountId"])
        credentials = sts.assume_role(
            RoleArn=f"arn:aws:iam::{members[-1]}:role/{ORGANIZATION_ACCESS_ROLE}",
            RoleSessionName="leash-bench-setup",
        )["Credentials"]
        # Clients are created here, in one thread: boto3 sessions are not thread-safe.
        iam = session.client(
            "iam",
            endpoint_url=url,
            config=config,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        jobs.append((iam, read_role_trust))
    calls = 2 + 2 * len(members)
    with ThreadPoolExecutor(SETUP_WORKERS, thread_name_prefix="setup") as pool:
        calls += sum(pool.map(lambda job: _create_roles(job[0], roles, job[1]), jobs))
    return Estate(
        management=management,
        members=tuple(members),
        roles_per_account=roles,
        setup_seconds=time.perf_counter() - started,
        setup_calls=calls,
    )


# Measurements, each in a fresh spawned process (see `Workers`).


@dataclass(frozen=True, slots=True)
class Target:
    """What a worker process needs to reach the sandbox."""

    endpoint_url: str
    region: str
    concurrency: int


@dataclass(slots=True)
class Run:
    """One measured discovery (provider) or raw boto3 listing."""

    name: str
    wall_s: float
    identities: int
    calls: dict[str, int]
    # Identities with leash:agent=true, owner and team tags and the bedrock trust (-1: not read).
    tagged_agents: int = -1
    failures: dict[str, str] = field(default_factory=dict)
    max_rss_mib: float = 0.0
    rss_growth_mib: float = 0.0
    traced_peak_mib: float | None = None
    traced_kept_mib: float | None = None
    traced_wall_s: float | None = None

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def calls_per_identity(self) -> float:
        return self.total_calls / self.identities if self.identities else float("nan")


class CallCounter:
    """A botocore `before-send` handler: one count per HTTP request, by service:Operation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()

    def __call__(self, event_name: str, **_: Any) -> None:
        # event_name is "before-send.<service>.<Operation>"; returning None lets it go out.
        _event, service, operation = event_name.split(".", 2)
        with self._lock:
            self._calls[f"{service}:{operation}"] += 1

    def take(self) -> dict[str, int]:
        """Return the counts so far and start again from zero."""
        with self._lock:
            calls, self._calls = dict(self._calls.most_common()), Counter()
        return calls


def counted_session(target: Target, counter: CallCounter) -> Callable[[], boto3.Session]:
    """A session factory whose sessions count every request their clients send."""

    def make() -> boto3.Session:
        session = boto3.Session(
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name=target.region,
        )
        # Clients copy the session's event emitter when created, so they all carry the hook.
        session.events.register("before-send", counter)
        return session

    return make


def max_rss_mib() -> float:
    """This process's peak resident set size so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024


def tagged_agents(result: DiscoveryResult) -> int:
    return sum(
        1
        for identity in result.identities
        if identity.tags.get(AGENT_TAG) == "true"
        and OWNER_TAG in identity.tags
        and TEAM_TAG in identity.tags
        and AGENT_SERVICE in identity.trust_principals
    )


async def timed_discover(provider: AwsProvider) -> tuple[DiscoveryResult, float]:
    started = time.perf_counter()
    result = await provider.discover()
    return result, time.perf_counter() - started


def measure_provider(target: Target, trace: bool) -> list[Run]:
    """Untraced: discover() on a new provider (cold), then again on the same one (warm).

    Traced: the cold call only, tracemalloc on from just before it. `traced_kept_mib` is what
    is still allocated once the result is dropped: what the provider keeps (its cached
    clients and credentials, the service models they loaded).
    """
    counter = CallCounter()
    provider = AwsProvider(
        session_factory=counted_session(target, counter),
        endpoint_url=target.endpoint_url,
        region=target.region,
        max_concurrency=target.concurrency,
    )
    names = ("cold",) if trace else ("cold", "warm")
    runs: list[Run] = []
    for name in names:
        rss_before = max_rss_mib()
        if trace:
            tracemalloc.start()
        result, wall = asyncio.run(timed_discover(provider))
        rss_after = max_rss_mib()
        run = Run(
            name=f"provider.discover() {name}",
            wall_s=wall,
            identities=len(result.identities),
            calls=counter.take(),
            tagged_agents=tagged_agents(result),
            failures=dict(result.failures),
            max_rss_mib=rss_after,
            rss_growth_mib=rss_after - rss_before,
        )
        del result
        if trace:
            kept, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            run.traced_peak_mib, run.traced_kept_mib = peak / MIB, kept / MIB
        runs.append(run)
    return runs


def measure_raw(target: Target, mode: RawMode) -> Run:
    """Plain sequential boto3 over every account, assuming the read role in each member.

    `list_roles`: ListRoles pages only, no tags, trust or policies: the floor.
    `authorization_details`: GetAccountAuthorizationDetails (roles and users), which returns
    tags, trust, last use and inline and attached policies in pages of up to 1000.
    """
    counter = CallCounter()
    config = Config(region_name=target.region, retries={"mode": "standard", "max_attempts": 3})
    rss_before = max_rss_mib()
    started = time.perf_counter()
    session = counted_session(target, counter)()
    url = target.endpoint_url
    sts = session.client("sts", endpoint_url=url, config=config)
    home = sts.get_caller_identity()["Account"]
    organizations = session.client("organizations", endpoint_url=url, config=config)
    accounts = [
        account["Id"]
        for page in organizations.get_paginator("list_accounts").paginate()
        for account in page["Accounts"]
        if account.get("Status", "ACTIVE") == "ACTIVE"
    ]
    identities = 0
    agents = 0
    for account in accounts:
        if account == home:
            iam = session.client("iam", endpoint_url=url, config=config)
        else:
            credentials = sts.assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/{READ_ROLE}",
                RoleSessionName="leash-bench",
                DurationSeconds=3600,
            )["Credentials"]
            iam = session.client(
                "iam",
                endpoint_url=url,
                config=config,
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
            )
        if mode == "list_roles":
            for page in iam.get_paginator("list_roles").paginate():
                identities += sum(1 for role in page["Roles"] if role["RoleName"] != READ_ROLE)
            continue
        details = iam.get_paginator("get_account_authorization_details").paginate(
            Filter=["Role", "User"], PaginationConfig={"PageSize": 1000}
        )
        for detail in details:
            roles = [r for r in detail["RoleDetailList"] if r["RoleName"] != READ_ROLE]
            identities += len(roles) + len(detail["UserDetailList"])
            agents += sum(
                1
                for role in roles
                if {"Key": AGENT_TAG, "Value": "true"} in role.get("Tags", [])
                and AGENT_SERVICE in trust_principals(role.get("AssumeRolePolicyDocument", "{}"))
            )
    wall = time.perf_counter() - started
    rss_after = max_rss_mib()
    return Run(
        name="raw boto3 ListRoles (floor)"
        if mode == "list_roles"
        else "raw boto3 GetAccountAuthorizationDetails",
        wall_s=wall,
        identities=identities,
        calls=counter.take(),
        tagged_agents=agents if mode == "authorization_details" else -1,
        max_rss_mib=rss_after,
        rss_growth_mib=rss_after - rss_before,
    )


class Workers:
    """Fresh worker processes, one per measurement, spawned before the moto server starts.

    moto runs in this process: measured in here, tracemalloc and max RSS would count the
    server's allocations and its thousands of roles, and the GIL would be shared with it. And
    they are spawned early because Linux carries a process's max RSS over fork and exec: a
    worker spawned after the setup would start with this process's peak as its own.
    """

    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._pools = [ProcessPoolExecutor(max_workers=1, mp_context=context) for _ in range(count)]
        started = [pool.submit(os.getpid) for pool in self._pools]
        for future in started:
            future.result()

    def run(self, function: Callable[..., T], *args: object) -> T:
        """Run `function(*args)` in the next unused worker, then let that worker go."""
        pool = self._pools.pop(0)
        try:
            return pool.submit(function, *args).result()
        finally:
            pool.shutdown()

    def close(self) -> None:
        for pool in self._pools:
            pool.shutdown(cancel_futures=True)
        self._pools.clear()


# Report.


def source_digests() -> dict[str, str]:
    """Short sha256 of each source measured (the tree may carry uncommitted work)."""
    return {
        str(path.relative_to(ROOT)): hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        for folder in SOURCES
        for path in sorted(folder.glob("*.py"))
    }


def environment() -> dict[str, Any]:
    # Imported here: the spawned workers import this module too, and SQLAlchemy (which
    # describe() uses to parse database URLs) would add ~17 MiB to their RSS baseline.
    from bench.environment import describe

    env = describe("sqlite://", ("boto3", "botocore", "moto"))
    for key in ("database_kind", "database_driver", "database_url"):
        env[key] = None  # this benchmark uses no database
    return env


def print_report(estate: Estate, target: Target, runs: Sequence[Run]) -> None:
    print(
        f"discovery — {estate.accounts} accounts x {estate.roles_per_account} roles, moto server "
        f"on loopback, python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print(
        f"provider max_concurrency={target.concurrency}; accounts scanned at once: "
        f"{min(target.concurrency, TO_THREAD_WORKERS)} (asyncio.to_thread's default pool has "
        f"{TO_THREAD_WORKERS} threads)"
    )
    print(
        f"setup (untimed): {estate.setup_calls} calls in {estate.setup_seconds:.1f} s, "
        f"{SETUP_WORKERS} threads"
    )
    print(
        f"identities expected {estate.expected} = {estate.accounts} x {estate.roles_per_account} "
        f"agent roles + {len(estate.members)} {ORGANIZATION_ACCESS_ROLE} "
        f"({READ_ROLE} is skipped as Leash's own)"
    )
    header = (
        f"{'run':<42} {'wall s':>8} {'found':>7} {'agents':>7} {'calls':>7} {'calls/id':>9} "
        f"{'peak MiB':>9} {'kept MiB':>9} {'RSS MiB':>8} {'RSS +':>7}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        agents = str(run.tagged_agents) if run.tagged_agents >= 0 else "-"
        peak = "-" if run.traced_peak_mib is None else f"{run.traced_peak_mib:.1f}"
        kept = "-" if run.traced_kept_mib is None else f"{run.traced_kept_mib:.1f}"
        print(
            f"{run.name:<42} {run.wall_s:>8.2f} {run.identities:>7} {agents:>7} "
            f"{run.total_calls:>7} {run.calls_per_identity:>9.3f} {peak:>9} {kept:>9} "
            f"{run.max_rss_mib:>8.1f} {run.rss_growth_mib:>7.1f}"
        )
    operations = Counter(runs[0].calls).most_common(TOP_OPERATIONS)
    print()
    print(f"calls by operation (top {TOP_OPERATIONS} of the cold discover)")
    names = ["cold", "warm", "floor", "auth details"][: len(runs)]
    header = f"{'operation':<42}" + "".join(f" {name:>12}" for name in names)
    print(header)
    print("-" * len(header))
    shown = [operation for operation, _ in operations]
    # The raw runs' own operations too, so that every column adds up to its total.
    shown += sorted({op for run in runs[2:] for op in run.calls} - set(shown))
    for operation in shown:
        print(f"{operation:<42}" + "".join(f" {r.calls.get(operation, 0):>12}" for r in runs))
    rest = [sum(n for op, n in r.calls.items() if op not in shown) for r in runs]
    if any(rest):
        print(f"{'(other operations)':<42}" + "".join(f" {n:>12}" for n in rest))
    print(
        "peak/kept MiB: tracemalloc peak during the cold call, and what stays allocated after "
        "it (a second, traced worker; its wall time is in the JSON). RSS: the worker's max RSS "
        "after the call, and its growth during it."
    )


def problems(estate: Estate, runs: Iterable[Run]) -> list[str]:
    found: list[str] = []
    for run in runs:
        if run.identities != estate.expected:
            found.append(f"{run.name}: found {run.identities}, expected {estate.expected}")
        if run.tagged_agents not in (-1, estate.agents):
            found.append(f"{run.name}: {run.tagged_agents} tagged agents, expected {estate.agents}")
        found.extend(f"{run.name}: {scope}: {error}" for scope, error in run.failures.items())
    return found


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.discovery", description=__doc__)
    parser.add_argument(
        "--accounts", type=int, default=100, help="accounts, management included (100)"
    )
    parser.add_argument("--roles", type=int, default=100, help="agent roles per account (100)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"AwsProvider max_concurrency (its default, {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 accounts x 20 roles")
    parser.add_argument(
        "--cold-only",
        action="store_true",
        help="one cold discover() under tracemalloc, no warm or raw runs (make bench)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON file ({RESULTS})")
    args = parser.parse_args(argv)
    if args.quick:
        args.accounts, args.roles = 10, 20
    if args.accounts < 1 or args.roles < 0 or args.concurrency < 1:
        parser.error("--accounts and --concurrency must be >= 1, --roles >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workers = Workers(4)
    try:
        sandbox = Sandbox.start(seed=False)
        try:
            estate = populate(sandbox, args.accounts, args.roles)
            target = Target(sandbox.endpoint_url, sandbox.region, args.concurrency)
            if args.cold_only:
                [traced] = workers.run(measure_provider, target, True)
                runs = [traced]
            else:
                cold, warm = workers.run(measure_provider, target, False)
                [traced] = workers.run(measure_provider, target, True)
                floor = workers.run(measure_raw, target, "list_roles")
                details = workers.run(measure_raw, target, "authorization_details")
                cold.traced_peak_mib = traced.traced_peak_mib
                cold.traced_kept_mib = traced.traced_kept_mib
                cold.traced_wall_s = traced.wall_s
                runs = [cold, warm, floor, details]
        finally:
            sandbox.stop()
    finally:
        workers.close()
    print_report(estate, target, runs)
    if args.cold_only:
        print("--cold-only: the one cold run was traced (tracemalloc slows it); no warm/raw runs")
    issues = problems(estate, runs if args.cold_only else [*runs, traced])
    for issue in issues:
        print(f"PROBLEM {issue}")
    report = {
        "benchmark": "discovery",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": environment(),
        "parameters": {
            "accounts": estate.accounts,
            "roles_per_account": estate.roles_per_account,
            "max_concurrency": target.concurrency,
            "cold_only": args.cold_only,
            "to_thread_workers": TO_THREAD_WORKERS,
            "setup_workers": SETUP_WORKERS,
            "setup_seconds": round(estate.setup_seconds, 3),
            "setup_calls": estate.setup_calls,
            "call_counting": COUNTING,
            "sources_sha256": source_digests(),
        },
        "expected": {
            "identities": estate.expected,
            "agent_roles": estate.agents,
            "organization_access_roles": len(estate.members),
        },
        "runs": [
            {
                **asdict(run),
                "total_calls": run.total_calls,
                "calls_per_identity": run.calls_per_identity,
            }
            for run in runs
        ],
        "problems": issues,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 1 if issues else 0


if __name__ == "__main__":
    raise SystemExit(main())
