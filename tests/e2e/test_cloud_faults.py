"""AWS faults injected at the wire in front of the moto server: throttling, 5xx, AccessDenied
and slow answers on grant, revoke, discovery and the usage scan."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import boto3
import botocore.session
import pytest
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError
from sqlalchemy import update
from sqlmodel import col, select

from bot.access.drafting import RequestInput
from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.errors import LeashError
from bot.domain.messages import NoticeKind
from bot.domain.states import ActorKind, GrantState, RequestState
from bot.store.tables import AccessRequest, AuditEvent, Grant, Identity
from cloud.aws import AwsProvider
from cloud.sandbox import Sandbox
from cloud.sandbox.aws.moto_calls import MotoCall
from tests.e2e.helpers import audit_types, eventually, grant, inline_policy, inline_policy_names
from tests.fakes.notifier import RecordingNotifier

# The faults are in the cloud; the database is not what these tests are about.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ROLE = "support-triage-agent"
DEV = Actor("dev", ActorKind.USER, "console")
OWNER = Actor("owner-a", ActorKind.USER, "console")
ADMIN = Actor("secops", ActorKind.USER, "console")
HELD = 10.0  # seconds the cloud holds an answer back


async def approved(
    leash: Leash, *, seconds: float = 600, role: str = ROLE, approver: Actor = OWNER
) -> Grant:
    request = await leash.lifecycle.requests.submit(
        RequestInput(
            identity=role,
            permission_set="s3-read",
            duration=timedelta(seconds=seconds),
            reason="cloud fault drill",
        ),
        actor=DEV,
    )
    result = await leash.lifecycle.approve(request.id, actor=approver)
    assert result.grant is not None
    return result.grant


def calls(sandbox: Sandbox, operation: str, **params: str) -> list[MotoCall]:
    return [
        call
        for call in sandbox.moto.calls()
        if call.operation == operation and all(call.params.get(k) == v for k, v in params.items())
    ]


def leash_policies(sandbox: Sandbox) -> list[str]:
    return [name for name in inline_policy_names(sandbox, ROLE) if name.startswith("leash-grant")]


@pytest.mark.parametrize(
    ("operation", "code", "status"),
    [
        ("iam:ListRoles", "Throttling", 400),
        ("iam:ListRoles", "ServiceUnavailable", 503),
        ("organizations:ListAccounts", "TooManyRequestsException", 429),
        ("organizations:ListAccounts", "AccessDeniedException", 403),
    ],
    ids=["query-protocol throttling", "query-protocol 5xx", "json-protocol 429", "json 403"],
)
def test_botocore_reads_an_injected_fault_as_aws_would_send_it(
    sandbox: Sandbox, operation: str, code: str, status: int
) -> None:
    service, _, name = operation.partition(":")
    config = Config(retries={"mode": "standard", "total_max_attempts": 1})
    session, url = sandbox.session(), sandbox.endpoint_url
    client: Any = (
        session.client("iam", endpoint_url=url, config=config)
        if service == "iam"
        else session.client("organizations", endpoint_url=url, config=config)
    )
    sandbox.moto.inject(operation, code=code, status=status)
    try:
        with pytest.raises(ClientError) as raised:
            getattr(client, xform_name(name))()
    finally:
        sandbox.moto.clear_faults()
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert "injected fault" in raised.value.response["Error"]["Message"]
    getattr(client, xform_name(name))()  # used up: the next call is moto's


@SQLITE_ONLY
async def test_throttled_grant_is_retried_and_applied_once(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    fresh_sandbox.moto.clear_calls()
    fault = fresh_sandbox.moto.inject(
        "iam:PutRolePolicy", code="Throttling", status=400, times=2, match={"RoleName": ROLE}
    )
    applied = await approved(leash)
    assert applied.state == GrantState.ACTIVE
    assert fault.used == 2
    name = f"leash-grant-{applied.id}"
    assert len(calls(fresh_sandbox, "PutRolePolicy", RoleName=ROLE, PolicyName=name)) == 3
    assert inline_policy(fresh_sandbox, ROLE, name) is not None
    assert (await audit_types(leash, grant_id=applied.id)).count("grant.applied") == 1


async def test_a_sweep_revokes_identities_side_by_side_and_each_ones_grants_in_turn(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    first, second = await approved(leash), await approved(leash)
    others = [
        await approved(leash, role=role, approver=ADMIN)
        for role in ("knowledge-base-agent", "invoice-reader-agent")
    ]
    everything = [first, second, *others]
    async with leash.context.transaction() as session:  # all due at once, as after an outage
        await session.exec(
            update(Grant)
            .where(col(Grant.id).in_([g.id for g in everything]))
            .values(expires_at=leash.context.clock.now())
        )
    # The cloud holds the answer to the first delete on support-triage-agent back for a while.
    held = fresh_sandbox.moto.inject(
        "iam:DeleteRolePolicy", code="", delay=HELD, match={"PolicyName": f"leash-grant-{first.id}"}
    )
    rules = {
        g.id: fresh_sandbox.moto.inject(
            "iam:DeleteRolePolicy", code="", match={"PolicyName": f"leash-grant-{g.id}"}
        )
        for g in (second, *others)
    }
    sweep = asyncio.create_task(leash.lifecycle.sweep.run())

    async def others_arrived() -> bool:
        return held.used == 1 and all(rules[g.id].used == 1 for g in others)

    # The other identities' deletes reach the cloud while the held one waits...
    assert await eventually(others_arrived, within=HELD - 2), "revokes ran one at a time"
    # ...and support-triage-agent's second grant waits for its first.
    assert rules[second.id].used == 0
    assert not sweep.done()
    report = await sweep
    assert report.revoked == 4
    assert [(await grant(leash, g.id)).state for g in everything] == [GrantState.REVOKED] * 4
    assert leash_policies(fresh_sandbox) == []


@SQLITE_ONLY
async def test_server_errors_on_revoke_are_retried_and_it_is_revoked_once(
    leash: Leash, fresh_sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    applied = await approved(leash)
    name = f"leash-grant-{applied.id}"
    moto = fresh_sandbox.moto
    moto.inject(
        "iam:DeleteRolePolicy", code="InternalFailure", status=500, match={"PolicyName": name}
    )
    moto.inject(
        "iam:DeleteRolePolicy", code="ServiceUnavailable", status=503, match={"PolicyName": name}
    )
    revoked = await leash.lifecycle.grants.revoke(applied.id, actor=DEV, reason="done")
    assert revoked.state == GrantState.REVOKED
    assert len(calls(fresh_sandbox, "DeleteRolePolicy", PolicyName=name)) == 3
    assert inline_policy(fresh_sandbox, ROLE, name) is None
    assert (await audit_types(leash, grant_id=applied.id)).count("grant.revoked") == 1
    assert len(notifier.of_kind(NoticeKind.REVOKED)) == 1


@SQLITE_ONLY
async def test_access_denied_fails_the_grant_tells_both_and_leaves_nothing(
    leash: Leash, fresh_sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    fault = fresh_sandbox.moto.inject(
        "iam:PutRolePolicy", code="AccessDenied", status=403, times=None, match={"RoleName": ROLE}
    )
    failed = await approved(leash)
    assert failed.state == GrantState.FAILED
    assert fault.used == 1  # AccessDenied is not worth a retry
    assert "AccessDenied" in (failed.last_error or "")
    told = notifier.of_kind(NoticeKind.GRANT_FAILED)
    assert len(told) == 1
    assert set(told[0].recipients) == {"dev", "owner-a"}
    assert leash_policies(fresh_sandbox) == []
    # Nothing left in a state it cannot leave: the request is decided, the grant final.
    async with leash.context.sessions() as session:
        request = await session.get(AccessRequest, failed.request_id)
    assert request is not None
    assert request.state == RequestState.APPROVED
    with pytest.raises(LeashError):
        await leash.lifecycle.approve(request.id, actor=OWNER)
    assert await leash.lifecycle.sweep.reconcile() == 0
    assert (await grant(leash, failed.id)).state == GrantState.FAILED


async def _due_now(leash: Leash, grant_id: str) -> None:
    async with leash.context.transaction() as session:
        await session.exec(
            update(Grant)
            .where(col(Grant.id) == grant_id)
            .values(next_attempt_at=leash.context.clock.now())
        )


@SQLITE_ONLY
async def test_a_revoke_that_keeps_failing_backs_off_turns_irrevocable_and_is_retried_daily(
    leash: Leash, fresh_sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    applied = await approved(leash)
    name = f"leash-grant-{applied.id}"
    fresh_sandbox.moto.inject(
        "iam:DeleteRolePolicy",
        code="AccessDenied",
        status=403,
        times=None,
        match={"PolicyName": name},
    )
    async with leash.context.transaction() as session:  # it falls due now
        await session.exec(
            update(Grant)
            .where(col(Grant.id) == applied.id)
            .values(expires_at=leash.context.clock.now())
        )
    waits, states = [], []
    for _ in range(3):
        await leash.lifecycle.sweep.run()
        current = await grant(leash, applied.id)
        states.append(current.state)
        assert current.next_attempt_at is not None
        waits.append(current.next_attempt_at)
        await _due_now(leash, applied.id)  # skip the back-off instead of sleeping through it
    assert states == [GrantState.REVOKE_FAILED, GrantState.REVOKE_FAILED, GrantState.IRREVOCABLE]
    audited = await audit_types(leash, grant_id=applied.id)
    assert audited.count("grant.revoke_failed") == 2
    assert audited.count("grant.irrevocable") == 1
    async with leash.context.sessions() as session:
        failures = (
            await session.exec(
                select(AuditEvent)
                .where(col(AuditEvent.grant_id) == applied.id)
                .where(col(AuditEvent.event_type).in_(["grant.revoke_failed", "grant.irrevocable"]))
                .order_by(col(AuditEvent.seq))
            )
        ).all()
    # Each wait is measured from its own failure: 1 s, then 2 s, then a day.
    backoff = [wait - event.at for wait, event in zip(waits, failures, strict=True)]
    assert [round(b.total_seconds()) for b in backoff] == [1, 2, 86400]
    alert = notifier.of_kind(NoticeKind.IRREVOCABLE)
    assert len(alert) == 1
    assert set(alert[0].recipients) == {"dev", "owner-a", "secops"}
    assert inline_policy(fresh_sandbox, ROLE, name) is not None

    # The daily retry (the sweep, once next_attempt_at is reached) succeeds when AWS lets it.
    fresh_sandbox.moto.clear_faults()
    await leash.lifecycle.sweep.run()
    assert (await grant(leash, applied.id)).state == GrantState.REVOKED
    assert inline_policy(fresh_sandbox, ROLE, name) is None
    assert (await audit_types(leash, grant_id=applied.id)).count("grant.revoked") == 1
    assert len(calls(fresh_sandbox, "DeleteRolePolicy", PolicyName=name)) == 4


def _impatient_session(sandbox: Sandbox) -> boto3.Session:
    """A session whose clients wait at most 0.3 s for an answer."""
    core = botocore.session.get_session()
    core.set_default_client_config(Config(connect_timeout=1, read_timeout=0.3))
    env = sandbox.env
    return boto3.Session(
        botocore_session=core,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=sandbox.region,
    )


@SQLITE_ONLY
async def test_an_answer_slower_than_the_read_timeout_fails_the_grant_and_leaves_no_orphan(
    leash: Leash, fresh_sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    leash.context.providers = {
        "aws": AwsProvider(
            session_factory=lambda: _impatient_session(fresh_sandbox),
            endpoint_url=fresh_sandbox.endpoint_url,
            max_attempts=2,
        )
    }
    # AWS writes the policy every time; only its answer is late, so Leash never learns it.
    fresh_sandbox.moto.inject(
        "iam:PutRolePolicy", code="", delay=0.6, times=None, match={"RoleName": ROLE}
    )
    failed = await approved(leash)
    assert failed.state == GrantState.FAILED
    assert "timeout" in (failed.last_error or "").lower()
    name = f"leash-grant-{failed.id}"
    assert len(calls(fresh_sandbox, "PutRolePolicy", PolicyName=name)) == 2  # retried
    assert leash_policies(fresh_sandbox) == []  # the clean-up removed what AWS did write
    assert len(notifier.of_kind(NoticeKind.GRANT_FAILED)) == 1
    fresh_sandbox.moto.clear_faults()
    assert await leash.lifecycle.sweep.reconcile() == 0


async def _identity(leash: Leash, name: str) -> Identity:
    async with leash.context.sessions() as session:
        return (await session.exec(select(Identity).where(col(Identity.name) == name))).one()


@SQLITE_ONLY
async def test_an_account_refusing_discovery_is_reported_and_keeps_its_identities(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    member = fresh_sandbox.account("ml-dev")
    before = await _identity(leash, "model-eval-agent")
    assert (before.account, before.present) == (member.id, True)
    # Every IAM call in that account is refused, whichever Leash lists identities with.
    fault = fresh_sandbox.moto.inject(
        "iam:*", code="AccessDenied", status=403, times=None, match={"account": member.id}
    )
    report = await leash.lifecycle.inventory.refresh()
    assert fault.used >= 1
    assert [scope for scope in report.failures if member.id in scope] != [], report.failures
    assert "AccessDenied" in " ".join(report.failures.values())
    assert (await _identity(leash, "model-eval-agent")).present  # not read is not deleted
    assert (await _identity(leash, "invoice-reader-agent")).present
    others = {i.name for i in fresh_sandbox.identities if i.agent and i.account.id != member.id}
    assert others
    assert not [scope for scope in report.failures if any(a in scope for a in others)]


@SQLITE_ONLY
async def test_a_throttled_usage_scan_completes(leash: Leash, fresh_sandbox: Sandbox) -> None:
    seeded = fresh_sandbox.identity("code-review-agent")
    fault = fresh_sandbox.moto.inject(
        "iam:GenerateServiceLastAccessedDetails",
        code="TooManyRequestsException",
        status=429,
        times=1,
        match={"Arn": seeded.arn},
    )
    summary = await leash.lifecycle.least_privilege.scanner.scan(
        [(await _identity(leash, seeded.name)).id]
    )
    assert fault.used == 1
    assert (summary.scanned, summary.failures) == (1, {})


@SQLITE_ONLY
async def test_a_usage_scan_refused_shows_the_identity_as_failed_and_never_restricts_it(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    seeded = fresh_sandbox.identity("code-review-agent")
    fresh_sandbox.moto.inject(
        "iam:GenerateServiceLastAccessedDetails",
        code="AccessDenied",
        status=403,
        times=None,
        match={"Arn": seeded.arn},
    )
    summary = await leash.lifecycle.least_privilege.scanner.scan(
        [(await _identity(leash, seeded.name)).id]
    )
    assert summary.scanned == 0
    assert "AccessDenied" in summary.failures[seeded.name]
    refused = await leash.handler.handle_text(
        f"restrict {seeded.name}", actor=Actor("owner-b", ActorKind.USER, "console")
    )
    assert not refused.ok
    assert "not been scanned" in refused.text
    assert "leash-restrict" not in inline_policy_names(fresh_sandbox, seeded.name)
