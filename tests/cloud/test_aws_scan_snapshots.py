"""A scan's usage reads share one policy snapshot per account and agree with role-by-role reads."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

from cloud.aws import AwsProvider
from cloud.base import IdentityKind, IdentityRef, UsageReport
from cloud.sandbox import Sandbox
from tests.cloud.conftest import IamIn, ref
from tests.cloud.test_aws_usage import TRUST, WINDOW, allow, quick

PER_ROLE_READS = ("GetRole", "ListRolePolicies", "GetRolePolicy", "ListAttachedRolePolicies")


def role_refs(demo: Sandbox) -> list[IdentityRef]:
    return [ref(identity) for identity in demo.identities if identity.kind is IdentityKind.ROLE]


def leash_operations(demo: Sandbox) -> Counter[str]:
    return Counter(call.operation for call in demo.moto.calls() if call.by_leash)


async def usage_of_all(
    provider: AwsProvider, refs: list[IdentityRef], since: datetime
) -> list[UsageReport]:
    return list(await asyncio.gather(*(provider.usage(r, since) for r in refs)))


async def test_a_scan_reads_each_accounts_policies_once_and_agrees_with_role_by_role(
    demo: Sandbox, iam_in: IamIn
) -> None:
    agent = demo.identity("code-review-agent")
    iam = iam_in(agent.account.id)
    managed = iam.create_policy(PolicyName="extra", PolicyDocument=allow("lambda:GetFunction"))
    iam.attach_role_policy(RoleName=agent.name, PolicyArn=managed["Policy"]["Arn"])
    iam.put_role_policy(
        RoleName=agent.name, PolicyName="leash-grant-g1", PolicyDocument=allow("ec2:RunInstances")
    )
    provider, refs = quick(demo), role_refs(demo)
    since = datetime.now(UTC) - WINDOW  # one window for both reads, so their reports compare
    one_by_one = await usage_of_all(provider, refs, since)
    assert leash_operations(demo)["GetAccountAuthorizationDetails"] == 0  # not outside a scan

    demo.moto.clear_calls()
    async with provider.scanning():
        shared = await usage_of_all(provider, refs, since)

    assert shared == one_by_one
    granted = {report.identity.name: report.granted for report in shared}
    assert "lambda:GetFunction" in granted["code-review-agent"]  # the managed policy counts
    assert "ec2:RunInstances" not in granted["code-review-agent"]  # Leash's own grant does not
    operations = leash_operations(demo)
    assert operations["GetAccountAuthorizationDetails"] == len({r.account for r in refs})
    assert [operations[name] for name in PER_ROLE_READS] == [0, 0, 0, 0]


async def test_a_role_the_snapshot_does_not_hold_is_read_role_by_role(
    demo: Sandbox, iam_in: IamIn
) -> None:
    provider = quick(demo)
    since = datetime.now(UTC) - WINDOW
    triage = demo.identity("support-triage-agent")
    async with provider.scanning():
        await provider.usage(ref(triage), since)  # the account's snapshot is taken here
        iam = iam_in(triage.account.id)
        iam.create_role(RoleName="late-agent", AssumeRolePolicyDocument=TRUST)
        iam.put_role_policy(
            RoleName="late-agent", PolicyName="access", PolicyDocument=allow("sqs:SendMessage")
        )
        demo.moto.clear_calls()
        late = IdentityRef(
            provider="aws",
            account=triage.account.id,
            native_id=f"arn:aws:iam::{triage.account.id}:role/late-agent",
            name="late-agent",
            kind=IdentityKind.ROLE,
        )
        report = await provider.usage(late, since)

    assert report.granted == ("sqs:SendMessage",)
    operations = leash_operations(demo)
    assert operations["GetRole"] == 1
    assert operations["GetAccountAuthorizationDetails"] == 0  # the snapshot was not re-read


async def test_a_refused_snapshot_falls_back_to_role_by_role_reads(demo: Sandbox) -> None:
    provider, refs = quick(demo), role_refs(demo)
    since = datetime.now(UTC) - WINDOW  # one window for both reads, so their reports compare
    one_by_one = await usage_of_all(provider, refs, since)
    refused = demo.moto.inject(
        "iam:GetAccountAuthorizationDetails", code="AccessDenied", status=403, times=None
    )
    demo.moto.clear_calls()
    async with provider.scanning():
        shared = await usage_of_all(provider, refs, since)

    assert shared == one_by_one
    assert refused.used == len({r.account for r in refs})  # tried once per account, not per role
    assert leash_operations(demo)["GetRole"] == len(refs)
