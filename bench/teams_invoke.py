"""Teams invoke latency: signed Approve `Action.Execute` invokes answered before a slow cloud.

Run: `python -m bench.teams_invoke [--n 40] [--concurrency 10] [--cloud-latency 2.0] [--quick]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from botframework.connector.auth import MicrosoftAppCredentials

from bench.environment import describe
from bench.grant_latency import percentile
from bench.report import print_table, write
from bot.access.drafting import RequestInput
from bot.app import Leash, build, settle_heap
from bot.config import BUNDLED_POLICY, Settings, load_rules
from bot.domain.actors import Actor
from bot.domain.rules import Rules
from bot.domain.states import ActorKind, GrantState
from bot.http.server import build_web_app
from bot.inventory.ownership import OwnerChange
from cloud.base import IdentityKind
from cloud.sandbox import Sandbox, SeededIdentity
from tests.fakes.bot_connector import ConnectorCall, FakeBotConnector
from tests.fakes.bot_framework_tokens import BotFrameworkIssuer
from tests.fakes.teams_activities import TENANT_ID, TeamsUser, card_action, conversation_update

APP_ID = "5d0c7f3e-be9c-4b8e-9a41-3c2b7f0e5d11"
ADMIN = TeamsUser.named("secops", email="secops@example.com")
DEV = TeamsUser.named("dev", email="dev@example.com")
TEAMS_DEADLINE_MS = 5000.0  # Teams expects an invoke's answer in about 5 s (gives up at 15 s)
TARGET_P99_MS = 1000.0
POLL_SECONDS = 0.02
MAX_BODY = 1024 * 1024
RAW_SAMPLES = 3


@dataclass(frozen=True, slots=True)
class Click:
    request_id: str
    card_id: str  # the approval card's message id: Teams names it in the invoke (replyToId)
    activity: dict[str, Any]
    owner: TeamsUser


@dataclass(frozen=True, slots=True)
class Answer:
    request_id: str
    started: float
    ended: float
    status: int
    body: str

    @property
    def ms(self) -> float:
        return (self.ended - self.started) * 1000


def stats(what: str, ms: Sequence[float]) -> dict[str, Any]:
    return {
        "what": what,
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(max(ms, default=float("nan")), 1),
    }


def bench_rules() -> Rules:
    base = load_rules(BUNDLED_POLICY).model_dump(mode="python")
    base["admins"] = [ADMIN.email]
    return Rules.model_validate(base)


# The load generator: its own thread and event loop, as Teams is another machine


async def fire(
    url: str, clicks: Sequence[Click], issuer: BotFrameworkIssuer, service_url: str, limit: int
) -> list[Answer]:
    semaphore = asyncio.Semaphore(limit)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(click: Click) -> Answer:
            async with semaphore:
                # Signed as the Bot Framework signs it; the token is made before the clock starts.
                headers = {
                    "Authorization": issuer.authorization(audience=APP_ID, service_url=service_url)
                }
                started = time.perf_counter()
                try:
                    async with session.post(url, json=click.activity, headers=headers) as response:
                        body = await response.text()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as error:
                    body, status = str(error), 0
                return Answer(click.request_id, started, time.perf_counter(), status, body)

        return list(await asyncio.gather(*(one(click) for click in clicks)))


def fire_in_thread(
    url: str, clicks: Sequence[Click], issuer: BotFrameworkIssuer, service_url: str, limit: int
) -> list[Answer]:
    return asyncio.run(fire(url, clicks, issuer, service_url, limit))


# Setup, untimed


async def install(
    url: str, issuer: BotFrameworkIssuer, fake: FakeBotConnector, user: TeamsUser
) -> None:
    activity = conversation_update(
        members_added=["28:leash-bot"],
        service_url=fake.service_url,
        conversation_id=user.personal_conversation_id,
        user=user,
    )
    headers = {"Authorization": issuer.authorization(audience=APP_ID, service_url=fake.service_url)}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=activity, headers=headers) as response,
    ):
        if response.status not in (200, 201):
            raise RuntimeError(f"installing for {user.email}: {response.status}")


def card_to(owner: TeamsUser, request_id: str) -> Callable[[ConnectorCall], bool]:
    def match(call: ConnectorCall) -> bool:
        return call.conversation_id == owner.personal_conversation_id and request_id in json.dumps(
            call.body
        )

    return match


async def prepare(
    leash: Leash, fake: FakeBotConnector, agents: Sequence[SeededIdentity], n: int, tag: str
) -> list[Click]:
    """Pending requests, each with the approval card Leash posted to its agent's owner."""
    owners = {agent.arn: TeamsUser.named(f"own{k:02d}") for k, agent in enumerate(agents, 1)}
    clicks: list[Click] = []
    for i in range(n):
        agent = agents[i % len(agents)]
        owner = owners[agent.arn]
        request = await leash.lifecycle.requests.submit(
            RequestInput(
                identity=agent.arn,
                permission_set="s3-read",
                duration=timedelta(hours=1),
                reason=f"teams invoke bench {tag} {i}",
            ),
            actor=Actor(DEV.email, ActorKind.USER, "bench"),
        )
        posted = await fake.wait_for("send", where=card_to(owner, request.id))
        card_id = posted[0].answered_id or ""
        activity = card_action(
            "approve",
            {"command": f"approve {request.id}", "request": request.id},
            user=owner,
            service_url=fake.service_url,
            conversation_id=owner.personal_conversation_id,
            reply_to_id=card_id,
        )
        clicks.append(Click(request.id, card_id, activity, owner))
    return clicks


async def setup_people(
    leash: Leash,
    fake: FakeBotConnector,
    url: str,
    issuer: BotFrameworkIssuer,
    agents: Sequence[SeededIdentity],
) -> None:
    admin = Actor(ADMIN.email, ActorKind.USER, "bench")
    people = [ADMIN, DEV]
    for k, agent in enumerate(agents, 1):
        owner = TeamsUser.named(f"own{k:02d}")
        people.append(owner)
        await leash.lifecycle.owners.set(agent.arn, OwnerChange(owner.email), actor=admin)
    for person in people:
        fake.add_member(person)
        await install(url, issuer, fake, person)
    await fake.wait_for("send", count=len(people))


# The run


async def run(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    sandbox = Sandbox.start()
    # No Entra ID offline: the bot's outbound token is a fixed string the fake connector takes.
    MicrosoftAppCredentials.get_access_token = lambda self, force_refresh=False: "bench-token"
    try:
        with BotFrameworkIssuer() as issuer:
            async with FakeBotConnector() as fake:
                return await run_with(args, database_url, sandbox, issuer, fake)
    finally:
        sandbox.stop()


async def run_with(
    args: argparse.Namespace,
    database_url: str,
    sandbox: Sandbox,
    issuer: BotFrameworkIssuer,
    fake: FakeBotConnector,
) -> dict[str, Any]:
    settings = Settings(
        database_url=database_url,
        sweep_seconds=3600.0,
        MICROSOFT_APP_ID=APP_ID,
        MICROSOFT_APP_PASSWORD="bench",
        MICROSOFT_APP_TYPE="SingleTenant",
        MICROSOFT_APP_TENANT_ID=TENANT_ID,
        teams_openid_metadata_url=issuer.metadata_url,
        teams_token_issuer=issuer.issuer,
        teams_retry_seconds=0.05,
    )
    leash = build(settings, sandbox=sandbox, rules=bench_rules())
    assert leash.teams is not None
    runner = web.AppRunner(
        build_web_app(leash.lifecycle, max_body_bytes=MAX_BODY, teams=leash.teams),
        access_log=None,
    )
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="teams-client")
    loop = asyncio.get_running_loop()
    try:
        await leash.start(scheduler=True, discover=True)
        settle_heap()  # as `leash serve` does once started
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/messages"
        # Roles only: an IAM user's inline policies are capped at 2,048 characters.
        agents = [i for i in sandbox.identities if i.agent and i.kind is IdentityKind.ROLE]
        await setup_people(leash, fake, url, issuer, agents)
        clicks = await prepare(leash, fake, agents, args.n, "invoke")
        before = await prepare(leash, fake, agents, RAW_SAMPLES, "baseline")
        # Untimed: one signed invoke fetches the issuer's metadata and keys (cached after).
        warmup = card_action(
            "refresh",
            {"request": before[0].request_id},
            user=before[0].owner,
            service_url=fake.service_url,
            conversation_id=before[0].owner.personal_conversation_id,
        )
        await loop.run_in_executor(
            executor,
            fire_in_thread,
            url,
            [Click("warmup", "", warmup, before[0].owner)],
            issuer,
            fake.service_url,
            1,
        )
        await leash.teams.drain()

        # Every IAM call is served, then its answer held `--cloud-latency` seconds.
        sandbox.moto.inject("iam:*", code="", delay=args.cloud_latency, times=None)

        # Baselines: one raw IAM call, and the whole approval as the invoke used to wait for it.
        raw_ms, approve_ms = [], []
        iam = sandbox.session().client("iam", endpoint_url=sandbox.endpoint_url)
        for _ in range(RAW_SAMPLES):
            started = time.perf_counter()
            await loop.run_in_executor(None, lambda: iam.list_roles(MaxItems=1))
            raw_ms.append((time.perf_counter() - started) * 1000)
        for click in before:
            started = time.perf_counter()
            result = await leash.lifecycle.approve(
                click.request_id, actor=Actor(click.owner.email, ActorKind.USER, "bench")
            )
            approve_ms.append((time.perf_counter() - started) * 1000)
            if result.grant is None or result.grant.state != GrantState.ACTIVE:
                raise RuntimeError(f"baseline approve of {click.request_id} left no grant active")
        await leash.teams.drain()

        fired = loop.run_in_executor(
            executor, fire_in_thread, url, clicks, issuer, fake.service_url, args.concurrency
        )
        shown: dict[str, float] = {}  # request id -> when its card was updated to active
        by_card = {click.card_id: click for click in clicks}
        seen = 0
        deadline = time.perf_counter() + args.timeout
        answers: list[Answer] = []
        while time.perf_counter() < deadline:
            updates: list[ConnectorCall] = fake.calls_to("update")
            now = time.perf_counter()
            for call in updates[seen:]:
                updated = by_card.get(call.activity_id or "")
                if updated is not None and "is active until" in json.dumps(call.body):
                    shown.setdefault(updated.request_id, now)
            seen = len(updates)
            if fired.done() and not answers:
                answers = fired.result()
            if answers and len(shown) == len(clicks):
                break
            await asyncio.sleep(POLL_SECONDS)
        if not answers:
            answers = await fired
        await leash.teams.drain()
        return summarise(args, clicks, answers, shown, raw_ms, approve_ms)
    finally:
        executor.shutdown(wait=True)
        await runner.cleanup()
        await leash.close()


def summarise(
    args: argparse.Namespace,
    clicks: Sequence[Click],
    answers: Sequence[Answer],
    shown: dict[str, float],
    raw_ms: Sequence[float],
    approve_ms: Sequence[float],
) -> dict[str, Any]:
    started = {a.request_id: a.started for a in answers}
    invoke = [a.ms for a in answers]
    to_active = [(t - started[r]) * 1000 for r, t in shown.items() if r in started]
    applying = sum(1 for a in answers if "applying grant" in a.body)
    rows = [
        stats("invoke answered (Approve, signed)", invoke),
        stats("click -> card updated to active", to_active),
        stats("lifecycle.approve whole (old invoke path)", approve_ms),
        stats("raw boto3 iam call", raw_ms),
    ]
    p99 = rows[0]["p99_ms"]
    return {
        "parameters": {
            "n": args.n,
            "concurrency": args.concurrency,
            "cloud_latency_s": args.cloud_latency,
            "injection": "moto fault rule on iam:* (served, answer held)",
            "target_p99_ms": TARGET_P99_MS,
            "teams_deadline_ms": TEAMS_DEADLINE_MS,
        },
        "rows": rows,
        "answered_applying": applying,
        "non_200": sum(1 for a in answers if a.status != 200),
        "cards_never_active": sorted({c.request_id for c in clicks} - shown.keys()),
        "ok": {
            "p99_within_target": p99 <= TARGET_P99_MS,
            "over_teams_deadline": sum(1 for v in invoke if v > TEAMS_DEADLINE_MS),
        },
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.teams_invoke", description=__doc__)
    parser.add_argument("--n", type=int, default=40, help="Approve invokes (40)")
    parser.add_argument("--concurrency", type=int, default=10, help="invokes in flight (10)")
    parser.add_argument(
        "--cloud-latency", type=float, default=2.0, help="seconds each IAM answer is held (2.0)"
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="wait for the cards (180)")
    parser.add_argument("--quick", action="store_true", help="smoke run: n=10, concurrency=5")
    parser.add_argument("--output", type=Path, default=None, help="JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.concurrency = 10, 5
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="leash-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'leash.db'}"
        report = asyncio.run(run(args, url))
    packages = ("botbuilder-core", "aiohttp", "boto3", "moto", "sqlalchemy", "aiosqlite")
    report["environment"] = describe(url, packages)
    params = report["parameters"]
    print(
        f"teams invoke latency — n={params['n']}, concurrency={params['concurrency']}, "
        f"{params['cloud_latency_s'] * 1000:.0f} ms held on every IAM answer"
    )
    print_table(
        ("what", "n", "p50 ms", "p99 ms", "max ms"),
        [(r["what"], r["n"], r["p50_ms"], r["p99_ms"], r["max_ms"]) for r in report["rows"]],
    )
    print(
        f"answered 'applying': {report['answered_applying']}/{params['n']}, "
        f"non-200: {report['non_200']}, cards never active: {len(report['cards_never_active'])}"
    )
    write("teams_invoke", report, args.output)
    ok = report["ok"]
    failed = (
        not ok["p99_within_target"]
        or ok["over_teams_deadline"]
        or report["non_200"]
        or report["cards_never_active"]
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
