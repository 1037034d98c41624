"""Slack ack latency: signed slash commands and button clicks answered before a slow cloud.

Run: `python -m bench.slack_ack [--n 200] [--concurrency 50] [--cloud-latency 2.0] [--quick]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import random
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bench.environment import describe
from bench.grant_latency import percentile
from bot.access.drafting import RequestInput
from bot.app import Leash, build, settle_heap
from bot.config import BUNDLED_POLICY, Settings, load_rules
from bot.domain.actors import Actor
from bot.domain.rules import Rules
from bot.domain.states import ActorKind, GrantState
from bot.http.server import build_web_app
from bot.inventory.ownership import OwnerChange
from bot.store.tables import Grant
from cloud.base import (
    AppliedGrant,
    CloudProvider,
    DiscoveryResult,
    GrantArtefact,
    GrantSpec,
    IdentityKind,
    IdentityRef,
)
from cloud.sandbox import Sandbox, SeededIdentity
from tests.fakes.slack_api import FakeSlackApi, SlackCall
from tests.fakes.slack_signing import block_actions, sign, slash_command

RESULTS = Path(__file__).parent / "results" / "slack_ack.json"
SECRET = "bench-signing-secret"
ADMIN = "UADMIN"
REQUESTERS = 10
DEADLINE_MS = 3000.0  # Slack shows the user an error if the app has not answered by then
POLL_SECONDS = 0.05
SWEEP_SECONDS = 3600.0
GRANT_FOR = timedelta(hours=1)
PERMISSION_SET = "s3-read"
MAX_BODY = 1024 * 1024
# Share of the workload per operation; "help" takes the remainder.
MIX = {"approve": 0.35, "revoke": 0.10, "request": 0.25, "grants": 0.15}
KIND = {
    "request": "command",
    "grants": "command",
    "help": "command",
    "approve": "click",
    "revoke": "click",
}
LABEL = {
    "request": "/leash request",
    "grants": "/leash grants",
    "help": "/leash help",
    "approve": "Approve",
    "revoke": "Revoke now",
}


# The cloud, slowed down


class SlowProvider:
    """The real provider behind injected latency on grant and revoke (as in tests/bot/surfaces)."""

    def __init__(self, inner: CloudProvider, latency: float) -> None:
        self._inner = inner
        self._latency = latency
        self.name = inner.name

    async def discover(self) -> DiscoveryResult:
        return await self._inner.discover()

    async def grant(self, identity: IdentityRef, spec: GrantSpec) -> AppliedGrant:
        await asyncio.sleep(self._latency)
        return await self._inner.grant(identity, spec)

    async def revoke(self, identity: IdentityRef, grant_id: str) -> bool:
        await asyncio.sleep(self._latency)
        return await self._inner.revoke(identity, grant_id)

    async def grant_artefacts(self, identity: IdentityRef) -> tuple[GrantArtefact, ...]:
        return await self._inner.grant_artefacts(identity)

    def required_permissions(self) -> tuple[str, ...]:
        return self._inner.required_permissions()

    def __getattr__(self, name: str) -> Any:
        # Usage, restriction, quarantine and guardrails pass straight through.
        return getattr(self._inner, name)


# The workload


@dataclass(frozen=True, slots=True)
class Job:
    """One Slack request: unsigned body (signed when sent) and its response_url path."""

    op: str
    key: str  # the request id (approve) or grant id (revoke) it acts on; "" otherwise
    path: str
    body: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class Sample:
    op: str
    key: str
    path: str
    started: float  # time.perf_counter(), comparable across threads
    ended: float
    status: int

    @property
    def ms(self) -> float:
        return (self.ended - self.started) * 1000


@dataclass(frozen=True, slots=True)
class Row:
    what: str
    n: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    over_deadline: int = 0
    non_200: int = 0
    samples_ms: tuple[float, ...] = ()


def row(what: str, ms: Sequence[float], statuses: Sequence[int] = ()) -> Row:
    return Row(
        what=what,
        n=len(ms),
        p50_ms=percentile(ms, 50),
        p99_ms=percentile(ms, 99),
        max_ms=max(ms, default=math.nan),
        over_deadline=sum(1 for v in ms if v > DEADLINE_MS),
        non_200=sum(1 for s in statuses if s != 200),
        samples_ms=tuple(round(v, 3) for v in ms),
    )


def bench_rules() -> Rules:
    """The bundled example policy with a Slack user id as its admin."""
    base = load_rules(BUNDLED_POLICY).model_dump(mode="python")
    base["admins"] = [ADMIN]
    return Rules.model_validate(base)


def slack_actor(user_id: str) -> Actor:
    """A Slack user as the Slack surface builds them (user id, e-mail alias)."""
    return Actor(user_id, ActorKind.USER, "slack", aliases=(email(user_id),))


def email(user_id: str) -> str:
    return f"{user_id.lower()}@example.com"


def dm(user_id: str) -> str:
    return "D" + user_id[1:]


def counts(n: int) -> dict[str, int]:
    out = {op: round(n * share) for op, share in MIX.items()}
    out["help"] = n - sum(out.values())
    return out


def buttons(call: SlackCall) -> list[dict[str, Any]]:
    return [
        element
        for block in call.args.get("blocks") or []
        if block.get("type") == "actions"
        for element in block["elements"]
    ]


def answer_failed(args: dict[str, Any]) -> str | None:
    """The text of an ephemeral answer if Leash said it failed (":x:"), else None."""
    blocks = args.get("blocks") or []
    first = str(((blocks[0] if blocks else {}).get("text") or {}).get("text", ""))
    if first.startswith(":x:"):
        return first
    text = str(args.get("text", ""))
    return text if not blocks and text.startswith(":x:") else None


@dataclass(slots=True)
class Prepared:
    jobs: list[Job]
    approve: dict[str, str] = field(default_factory=dict)  # request id -> response_url path
    revoke: dict[str, str] = field(default_factory=dict)  # grant id -> response_url path
    seconds: float = 0.0


async def prepare(
    leash: Leash,
    fake: FakeSlackApi,
    agents: Sequence[SeededIdentity],
    owners: dict[str, str],
    requesters: Sequence[str],
    wanted: dict[str, int],
    seed: int,
) -> Prepared:
    """Untimed: pending requests to approve and active grants to revoke, by the real lifecycle.

    The buttons clicked are the ones Leash posted to the fake Slack (the owner's approval card,
    the requester's "grant is active" message).
    """
    started = time.perf_counter()
    lifecycle = leash.lifecycle
    pending: list[tuple[str, str]] = []  # (request id, owner)
    for i in range(wanted["approve"] + wanted["revoke"]):
        agent = agents[i % len(agents)]
        requester = requesters[i % len(requesters)]
        request = await lifecycle.requests.submit(
            RequestInput(
                identity=agent.arn,
                permission_set=PERMISSION_SET,
                duration=GRANT_FOR,
                reason=f"slack ack bench {i}",
            ),
            actor=slack_actor(requester),
        )
        pending.append((request.id, owners[agent.arn]))
    active: list[tuple[str, str]] = []  # (grant id, requester)
    for request_id, owner in pending[wanted["approve"] :]:
        result = await lifecycle.approve(request_id, actor=slack_actor(owner))
        if result.grant is None or result.grant.state != GrantState.ACTIVE:
            raise RuntimeError(f"preparing: approve of {request_id} did not leave a grant active")
        active.append((result.grant.id, result.grant.requester))
    assert leash.slack is not None
    await leash.slack.drain()

    posted: dict[tuple[str, str], dict[str, Any]] = {}  # (button value, channel) -> button
    for call in fake.calls_to("chat.postMessage"):
        for button in buttons(call):
            posted[(str(button["value"]), str(call.args["channel"]))] = button

    def click(op: str, value: str, user: str, key: str, index: int) -> Job:
        button = posted.get((value, user))
        if button is None:
            raise RuntimeError(f"preparing: no '{value}' button was posted to {user}")
        path = f"{op}-{index}"
        body, content_type = block_actions(
            user_id=user,
            action_id=button["action_id"],
            value=button["value"],
            channel_id=dm(user),
            message_ts="1700000000.000001",
            response_url=f"{fake.response_url_base}{path}",
        )
        return Job(op, key, path, body, content_type)

    prepared = Prepared(jobs=[])
    for i, (request_id, owner) in enumerate(pending[: wanted["approve"]]):
        job = click("approve", f"approve {request_id}", owner, request_id, i)
        prepared.approve[request_id] = job.path
        prepared.jobs.append(job)
    for i, (grant_id, requester) in enumerate(active):
        job = click("revoke", f"revoke {grant_id}", requester, grant_id, i)
        prepared.revoke[grant_id] = job.path
        prepared.jobs.append(job)

    def command(op: str, text: str, user: str, index: int) -> Job:
        path = f"{op}-{index}"
        body, content_type = slash_command(
            text,
            user_id=user,
            channel_id=dm(user),
            response_url=f"{fake.response_url_base}{path}",
            trigger_id=f"trig-{path}",
        )
        return Job(op, "", path, body, content_type)

    for i in range(wanted["request"]):
        agent = agents[(i * 5 + 3) % len(agents)]
        text = f"request {agent.name} {PERMISSION_SET} for 1h because slack ack bench {i}"
        prepared.jobs.append(command("request", text, requesters[i % len(requesters)], i))
    for i in range(wanted["grants"]):
        prepared.jobs.append(command("grants", "grants", requesters[i % len(requesters)], i))
    for i in range(wanted["help"]):
        prepared.jobs.append(command("help", "help", requesters[i % len(requesters)], i))
    random.Random(seed).shuffle(prepared.jobs)
    prepared.seconds = time.perf_counter() - started
    return prepared


# The load generator: its own thread and event loop, as Slack is another machine


async def fire(url: str, jobs: Sequence[Job], concurrency: int) -> list[Sample]:
    """POST every job, `concurrency` in flight; time each until status and body are read."""
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(job: Job) -> Sample:
            async with semaphore:
                headers = sign(SECRET, job.body, content_type=job.content_type)
                started = time.perf_counter()
                try:
                    async with session.post(url, data=job.body, headers=headers) as response:
                        await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                ended = time.perf_counter()
            return Sample(job.op, job.key, job.path, started, ended, status)

        return list(await asyncio.gather(*(one(job) for job in jobs)))


def fire_in_thread(url: str, jobs: Sequence[Job], concurrency: int) -> list[Sample]:
    return asyncio.run(fire(url, jobs, concurrency))


# Watching the background work finish


@dataclass(slots=True)
class Progress:
    answers: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    active: dict[str, float] = field(default_factory=dict)  # request id -> seen active
    revoked: dict[str, float] = field(default_factory=dict)  # grant id -> seen revoked
    failed: dict[str, str] = field(default_factory=dict)  # request/grant id -> state seen
    finished: bool = False


async def watch(
    fake: FakeSlackApi,
    observer: AsyncEngine,
    prepared: Prepared,
    progress: Progress,
    timeout_s: float,
) -> None:
    """Poll the fake Slack (answers) and the DB (grant states) until all is done or timeout."""
    paths = {job.path for job in prepared.jobs}
    deadline = time.perf_counter() + timeout_s
    seen_calls = 0
    async with AsyncSession(observer) as session:
        while time.perf_counter() < deadline:
            now = time.perf_counter()
            calls = fake.calls
            for call in calls[seen_calls:]:
                path = call.args.get("_path")
                if call.method == "response_url" and path in paths:
                    progress.answers.setdefault(str(path), (now, call.args))
            seen_calls = len(calls)
            for request_id, path in prepared.approve.items():  # refused: no grant will come
                answered = progress.answers.get(path)
                if answered is not None and answer_failed(answered[1]) is not None:
                    progress.failed.setdefault(request_id, "approve answered with an error")
            waiting = [r for r in prepared.approve if r not in progress.active]
            waiting = [r for r in waiting if r not in progress.failed]
            if waiting:
                rows = await session.exec(
                    select(Grant.request_id, Grant.state).where(col(Grant.request_id).in_(waiting))
                )
                for request_id, state in rows.all():
                    if state == GrantState.ACTIVE:
                        progress.active[request_id] = now
                    elif state == GrantState.FAILED:
                        progress.failed[request_id] = str(state)
            undone = [g for g in prepared.revoke if g not in progress.revoked]
            undone = [g for g in undone if g not in progress.failed]
            if undone:
                rows_g = await session.exec(
                    select(Grant.id, Grant.state).where(col(Grant.id).in_(undone))
                )
                for grant_id, state in rows_g.all():
                    if state == GrantState.REVOKED:
                        progress.revoked[grant_id] = now
                    elif state in (GrantState.REVOKE_FAILED, GrantState.IRREVOCABLE):
                        progress.failed[grant_id] = str(state)
            await session.commit()  # end the read transaction so the next poll sees new rows
            if len(progress.answers) == len(paths) and len(progress.active) + len(
                progress.revoked
            ) + len(progress.failed) == len(prepared.approve) + len(prepared.revoke):
                progress.finished = True
                return
            await asyncio.sleep(POLL_SECONDS)


# Logs


class LogTally(logging.Handler):
    """Counts WARNING and above by logger, keeping the first few messages."""

    def __init__(self, keep: int = 10) -> None:
        super().__init__(level=logging.WARNING)
        self.counts: Counter[str] = Counter()
        self.first: list[str] = []
        self._keep = keep

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[f"{record.levelname} {record.name}"] += 1
        if len(self.first) < self._keep:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            self.first.append(f"{record.levelname} {record.name}: {message}"[:500])


# The run


async def run(args: argparse.Namespace, url: str, tally: LogTally) -> dict[str, Any]:
    wanted = counts(args.n)
    sandbox = Sandbox.start()
    try:
        async with FakeSlackApi() as fake:
            return await run_with(args, url, tally, sandbox, fake, wanted)
    finally:
        sandbox.stop()


async def run_with(
    args: argparse.Namespace,
    url: str,
    tally: LogTally,
    sandbox: Sandbox,
    fake: FakeSlackApi,
    wanted: dict[str, int],
) -> dict[str, Any]:
    # Roles only: an IAM user's inline policies are capped at 2,048 characters, too few for the
    # several live grants each agent gets here.
    agents = [i for i in sandbox.identities if i.agent and i.kind is IdentityKind.ROLE]
    owners = {agent.arn: f"UOWN{k:02d}" for k, agent in enumerate(agents, 1)}
    requesters = [f"UDEV{k:02d}" for k in range(1, REQUESTERS + 1)]
    for user in (ADMIN, *owners.values(), *requesters):
        fake.add_user(user, email=email(user), name=user.lower())
    settings = Settings(
        database_url=url,
        sweep_seconds=SWEEP_SECONDS,
        slack_bot_token="xoxb-bench",
        slack_signing_secret=SECRET,
        slack_api_url=fake.base_url,
    )
    leash = build(settings, sandbox=sandbox, rules=bench_rules())
    assert leash.slack is not None
    observer = create_async_engine(url)  # plain engine: Leash's takes the write lock on reads
    runner = web.AppRunner(
        build_web_app(leash.lifecycle, max_body_bytes=MAX_BODY, slack=leash.slack),
        access_log=None,
    )
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slack-client")
    try:
        await leash.start(scheduler=True, discover=True)
        settle_heap()  # as `leash serve` does once started
        admin = Actor(ADMIN, ActorKind.USER, "bench")
        for agent in agents:
            await leash.lifecycle.owners.set(agent.arn, OwnerChange(owners[agent.arn]), actor=admin)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        endpoint = f"http://127.0.0.1:{port}/slack/events"

        prepared = await prepare(leash, fake, agents, owners, requesters, wanted, args.seed)
        loop = asyncio.get_running_loop()
        warmup = []
        for i in range(args.warmup):
            path = f"warmup-{i}"
            body, content_type = slash_command(
                "help", user_id=requesters[0], response_url=f"{fake.response_url_base}{path}"
            )
            warmup.append(Job("help", "", path, body, content_type))
        if warmup:
            await loop.run_in_executor(executor, fire_in_thread, endpoint, warmup, 1)
            await fake.wait_for("response_url", count=len(warmup))

        aws = leash.providers["aws"]
        slow = cast(CloudProvider, SlowProvider(aws, args.cloud_latency))
        leash.context.providers = {"aws": slow}
        tally.counts.clear()
        tally.first.clear()
        progress = Progress()
        watcher = asyncio.create_task(
            watch(fake, observer, prepared, progress, args.timeout + args.cloud_latency)
        )
        samples = await loop.run_in_executor(
            executor, fire_in_thread, endpoint, prepared.jobs, args.concurrency
        )
        await watcher
        done = time.perf_counter()
        await leash.slack.drain()
        drained = time.perf_counter()
        report = summarise(args, prepared, samples, progress, done, drained, tally)
        report["parameters"]["prepare_seconds"] = round(prepared.seconds, 3)
        report["parameters"]["agents"] = len(agents)
        return report
    finally:
        executor.shutdown(wait=True)
        await runner.cleanup()
        await leash.close()
        await observer.dispose()


def summarise(
    args: argparse.Namespace,
    prepared: Prepared,
    samples: Sequence[Sample],
    progress: Progress,
    done: float,
    drained: float,
    tally: LogTally,
) -> dict[str, Any]:
    def ack_row(what: str, chosen: Iterable[Sample]) -> Row:
        picked = list(chosen)
        return row(what, [s.ms for s in picked], [s.status for s in picked])

    acks: list[Row] = []
    for kind in ("command", "click"):
        acks.append(ack_row(kind, (s for s in samples if KIND[s.op] == kind)))
        for op in (op for op, k in KIND.items() if k == kind):
            acks.append(ack_row(f"  {LABEL[op]}", (s for s in samples if s.op == op)))
    acks.append(ack_row("all", samples))

    t0 = min(s.started for s in samples)
    by_path = {s.path: s for s in samples}
    by_key = {s.key: s for s in samples if s.key}
    to_active = [(t - by_key[r].started) * 1000 for r, t in progress.active.items()]
    to_revoked = [(t - by_key[g].started) * 1000 for g, t in progress.revoked.items()]
    to_answer = [(t - by_path[p].started) * 1000 for p, (t, _) in progress.answers.items()]
    background = [
        row("Approve click -> grant active (50 ms poll)", to_active),
        row("Revoke click -> grant revoked (50 ms poll)", to_revoked),
        row("POST -> ephemeral answer received (all)", to_answer),
    ]
    failed_answers = {
        path: text
        for path, (_, args_) in progress.answers.items()
        if (text := answer_failed(args_)) is not None
    }

    def wall(times: Iterable[float]) -> float | None:
        listed = list(times)
        return round((max(listed) - t0) * 1000, 1) if listed else None

    walls = {
        "first POST -> last ack": wall(s.ended for s in samples),
        "first POST -> all approved grants active": wall(progress.active.values()),
        "first POST -> all revokes done": wall(progress.revoked.values()),
        "first POST -> every ephemeral answer received": wall(
            t for t, _ in progress.answers.values()
        ),
        "first POST -> background done (poll ended)": round((done - t0) * 1000, 1),
        "Slack deliveries drained after that": round((drained - done) * 1000, 1),
    }
    everything = acks[-1]
    return {
        "benchmark": "slack_ack",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": {
            "n": args.n,
            "concurrency": args.concurrency,
            "cloud_latency_s": args.cloud_latency,
            "mix": counts(args.n),
            "warmup": args.warmup,
            "seed": args.seed,
            "deadline_ms": DEADLINE_MS,
            "poll_ms": POLL_SECONDS * 1000,
        },
        "acks": [asdict(r) for r in acks],
        "background": [asdict(r) for r in background],
        "wall_ms": walls,
        "background_finished": progress.finished,
        "missing": {
            "answers": sorted({j.path for j in prepared.jobs} - progress.answers.keys()),
            "grants_not_active": sorted(
                prepared.approve.keys() - progress.active.keys() - progress.failed.keys()
            ),
            "grants_not_revoked": sorted(
                prepared.revoke.keys() - progress.revoked.keys() - progress.failed.keys()
            ),
        },
        "failed_grants": progress.failed,
        "failed_answers": failed_answers,
        "logs": {"counts": dict(tally.counts), "first": list(tally.first)},
        "ok": {
            "over_deadline": everything.over_deadline,
            "non_200": everything.non_200,
        },
    }


# Output


def print_report(report: dict[str, Any]) -> None:
    env, params = report["environment"], report["parameters"]
    print(
        f"slack ack latency — n={params['n']}, concurrency={params['concurrency']}, injected "
        f"cloud latency {params['cloud_latency_s'] * 1000:.0f} ms per grant/revoke call, "
        f"{env['database_kind']} ({env['database_driver']}), python {env['python']}"
    )
    header = (
        f"{'kind':<22} {'n':>4} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} "
        f"{f'>{DEADLINE_MS:.0f} ms':>9} {'non-200':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in report["acks"]:
        print(
            f"{r['what']:<22} {r['n']:>4} {r['p50_ms']:>9.1f} {r['p99_ms']:>9.1f} "
            f"{r['max_ms']:>9.1f} {r['over_deadline']:>9} {r['non_200']:>8}"
        )
    print()
    header = f"{'background work, same run':<46} {'n':>4} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}"
    print(header)
    print("-" * len(header))
    for r in report["background"]:
        print(
            f"{r['what']:<46} {r['n']:>4} {r['p50_ms']:>9.1f} {r['p99_ms']:>9.1f} "
            f"{r['max_ms']:>9.1f}"
        )
    for what, ms in report["wall_ms"].items():
        shown = "-" if ms is None else f"{ms:.1f} ms"
        print(f"wall: {what:<52} {shown:>12}")
    missing = report["missing"]
    problems = [
        *(f"no answer on {p}" for p in missing["answers"][:5]),
        *(f"grant of {r} never active" for r in missing["grants_not_active"][:5]),
        *(f"grant {g} never revoked" for g in missing["grants_not_revoked"][:5]),
        *(f"{k} ended {state}" for k, state in list(report["failed_grants"].items())[:5]),
        *(f"{p} answered: {t[:160]}" for p, t in list(report["failed_answers"].items())[:5]),
    ]
    print(
        f"error answers = {len(report['failed_answers'])}, failed grants = "
        f"{len(report['failed_grants'])}, background finished = {report['background_finished']}"
    )
    for problem in problems:
        print(f"  ! {problem}")
    logs = report["logs"]
    print(f"log records >= WARNING during the timed run: {sum(logs['counts'].values())}")
    for name, count in sorted(logs["counts"].items()):
        print(f"  {count:>4}  {name}")
    for line in logs["first"][:5]:
        print(f"  e.g. {line[:200]}")


def environment(url: str) -> dict[str, Any]:
    packages = ("slack_bolt", "slack_sdk", "aiohttp", "boto3", "moto", "sqlalchemy", "aiosqlite")
    return describe(url, packages)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.slack_ack", description=__doc__)
    parser.add_argument("--n", type=int, default=200, help="signed requests in all (200)")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight (50)")
    parser.add_argument(
        "--cloud-latency",
        type=float,
        default=2.0,
        help="seconds added to every provider grant and revoke (2.0)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed /leash help first (1)")
    parser.add_argument("--seed", type=int, default=1, help="shuffle of the workload (1)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds from the first POST to wait for the background work (120)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: n=40, concurrency=10")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON file ({RESULTS})")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.concurrency = 40, 10
    if args.n < 10 or args.concurrency < 1 or args.cloud_latency < 0 or args.warmup < 0:
        parser.error("--n must be >= 10, --concurrency >= 1, --cloud-latency and --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    tally = LogTally()
    logging.getLogger().addHandler(tally)
    with tempfile.TemporaryDirectory(prefix="leash-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'leash.db'}"
        report = asyncio.run(run(args, url, tally))
    report = {**report, "environment": environment(url)}
    print_report(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    ok = report["ok"]
    if ok["over_deadline"] or ok["non_200"]:
        print(
            f"FAIL: {ok['over_deadline']} response(s) over {DEADLINE_MS:.0f} ms, "
            f"{ok['non_200']} non-200"
        )
        return 1
    if not report["background_finished"] or report["failed_answers"] or report["failed_grants"]:
        print("FAIL: the background work did not all finish, or Leash answered with an error")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
