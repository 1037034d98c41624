"""Start-up: overdue grants are revoked before Leash answers, and never listed as active."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from bot.access import queries
from bot.app import Leash, build
from bot.cli.main import main
from bot.config import Settings
from bot.domain.actors import Actor
from bot.domain.rules import Rules
from bot.domain.states import ActorKind, GrantState
from bot.http.server import build_web_app
from bot.surfaces.slack.forms import home_view
from cloud.sandbox import Sandbox
from tests.e2e.helpers import GRANT_ID, REQUEST_ID, eventually, grant, inline_policy
from tests.fakes.notifier import RecordingNotifier

DEV = Actor("dev", ActorKind.USER, "console")
OWNER_A = Actor("owner-a", ActorKind.USER, "console")
OWNER_B = Actor("owner-b", ActorKind.USER, "console")
AGENTS = (("support-triage-agent", OWNER_A), ("code-review-agent", OWNER_B))


async def _approved(leash: Leash, agent: str, owner: Actor, seconds: int) -> tuple[str, str]:
    """Ask as dev and approve as the owner: (request id, grant id)."""
    asked = await leash.handler.handle_text(
        f"request {agent} s3-read for {seconds}s because start-up drill", actor=DEV
    )
    request = REQUEST_ID.search(asked.text)
    assert request, asked.text
    approved = await leash.handler.handle_text(f"approve {request[1]}", actor=owner)
    granted = GRANT_ID.search(approved.text)
    assert granted, approved.text
    assert " is active " in approved.text, approved.text
    return request[1], granted[1]


async def _past_expiry(leash: Leash, grant_ids: list[str]) -> None:
    latest = max([(await grant(leash, grant_id)).expires_at for grant_id in grant_ids])
    await asyncio.sleep(max(0.0, (latest - datetime.now(UTC)).total_seconds()) + 0.5)


def _built(database_url: str, sandbox: Sandbox, rules: Rules) -> Leash:
    return build(
        # A long lease: start waits for the overdue revocations up to 10 s (a third of it).
        Settings(database_url=database_url, sweep_seconds=30, leader_lease_seconds=60),
        sandbox=sandbox,
        rules=rules,
        notifiers=[RecordingNotifier()],
    )


async def test_a_restart_revokes_the_overdue_grants_before_start_returns(
    database_url: str, fresh_sandbox: Sandbox, rules: Rules
) -> None:
    first = _built(database_url, fresh_sandbox, rules)
    await first.start()
    try:
        grant_ids = [
            (await _approved(first, agent, owner, seconds=2))[1]
            for agent, owner in AGENTS
            for _ in range(2)
        ]
    finally:
        await first.close()  # its timers go with it: the grants stay live past their expiry
    await _past_expiry(first, grant_ids)
    assert {(await grant(first, g)).state for g in grant_ids} == {GrantState.ACTIVE}

    second = _built(database_url, fresh_sandbox, rules)
    await second.start(discover=False)
    try:
        listed = await second.handler.handle_text("grants all", actor=OWNER_A)
        assert listed.text == "No live grants.", listed.lines
        assert {(await grant(second, g)).state for g in grant_ids} == {GrantState.REVOKED}
        for grant_id, (agent, _) in zip(
            grant_ids, [a for a in AGENTS for _ in range(2)], strict=True
        ):
            assert inline_policy(fresh_sandbox, agent, f"leash-grant-{grant_id}") is None
    finally:
        await second.close()


async def test_a_grant_past_expiry_is_listed_overdue_until_it_is_revoked(
    leash: Leash, database_url: str
) -> None:
    """`leash` leads no scheduler here, as a follower replica while the leader revokes."""
    request_id, grant_id = await _approved(leash, "support-triage-agent", OWNER_A, seconds=1)
    issued = await leash.lifecycle.tokens.issue("support-triage-agent", actor=OWNER_A)
    await _past_expiry(leash, [grant_id])
    assert (await grant(leash, grant_id)).state == GrantState.ACTIVE

    listed = await leash.handler.handle_text("grants all", actor=OWNER_A)
    mine = await leash.handler.handle_text("grants mine", actor=DEV)
    for reply in (listed, mine):
        (line,) = reply.lines
        assert f"{grant_id}  support-triage-agent  overdue  until" in line, line
    async with leash.context.sessions() as session:
        rows = await queries.grants(session=session, requester_keys=DEV.keys)
    home = str(home_view(pending=[], grants=rows, owned=[], now=datetime.now(UTC)))
    assert " · overdue until " in home
    assert " · active " not in home

    async with TestClient(
        TestServer(build_web_app(leash.lifecycle, max_body_bytes=64 * 1024))
    ) as client:
        answer = await client.get(
            f"/api/v1/requests/{request_id}",
            headers={"Authorization": f"Bearer {issued.token}"},
        )
        assert answer.status == 200
        assert (await answer.json())["grant"]["state"] == "overdue"
    cli = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["grants", "--format", "json"],
        env={"LEASH_DATABASE_URL": database_url},
    )
    assert cli.exit_code == 0, cli.output
    (listed_grant,) = [row for row in json.loads(cli.output) if row["id"] == grant_id]
    assert (listed_grant["state"], listed_grant["identity"]) == ("overdue", "support-triage-agent")

    await leash.runner.start(leash.lifecycle)  # a leader now: it revokes, and the list says so

    async def revoked() -> bool:
        return (await grant(leash, grant_id)).state == GrantState.REVOKED

    assert await eventually(revoked, within=30)
    assert (await leash.handler.handle_text("grants all", actor=OWNER_A)).text == "No live grants."


def test_leash_built_for_aws_alone_imports_no_google_or_azure_library() -> None:
    script = (
        "import sys\n"
        "from bot.app import build\n"
        "from bot.config import Settings\n"
        "leash = build(Settings(database_url='sqlite+aiosqlite:///:memory:', cloud='aws'))\n"
        "assert sorted(leash.providers) == ['aws'], leash.providers\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('google', 'azure', 'grpc')]\n"
        "loaded += [m for m in sys.modules if m.startswith(('cloud.gcp', 'cloud.azure'))]\n"
        "print(sorted(loaded))\n"
    )
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LEASH_GCP", "LEASH_AZURE", "AZURE_", "GOOGLE_"))
    }
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
