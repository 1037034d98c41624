"""Discovery names who created each identity and who granted to it, from CloudTrail."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from cloud.aws import AwsProvider
from cloud.aws.provenance import LookupThrottle, render
from cloud.base import DiscoveredIdentity, DiscoveryResult, GrantSpec
from cloud.sandbox import Sandbox
from tests.cloud.conftest import FAST_LOOKUPS, ref

if TYPE_CHECKING:
    from mypy_boto3_cloudtrail import CloudTrailClient
    from mypy_boto3_iam import IAMClient

ALICE = "alice@example.com (via AWSReservedSSO_Admin_abc)"
CAROL = "carol@example.com (via AWSReservedSSO_PowerUser_def)"
# One LookupEvents call per event name: Create{Role,User} and seven grant events, or only
# the five about roles in the member accounts, which have no IAM users.
CALLS = {"platform": 9, "ml-prod": 5, "ml-dev": 5}
GRANT = GrantSpec("g1", ("s3:GetObject",), ("*",), datetime(2030, 1, 1, tzinfo=UTC))


def by_name(result: DiscoveryResult) -> dict[str, DiscoveredIdentity]:
    return {identity.ref.name: identity for identity in result.identities}


def client_in(demo: Sandbox, account: str, service: str, *, session_name: str) -> Any:
    """Return a client acting in `account` through OrganizationAccountAccessRole."""
    session = demo.session()
    credentials = session.client("sts", endpoint_url=demo.endpoint_url).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
        RoleSessionName=session_name,
    )["Credentials"]
    return session.client(
        service,  # type: ignore[call-overload]
        endpoint_url=demo.endpoint_url,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


async def test_discovery_names_creators_and_granters_in_every_account(
    demo: Sandbox, provider: AwsProvider
) -> None:
    result = await provider.discover()

    assert result.failures == {}
    found = by_name(result)
    platform = demo.account("platform").id
    bob = f"arn:aws:iam::{platform}:user/bob"
    assert (found["support-triage-agent"].created_by, found["support-triage-agent"].granted_by) == (
        ALICE,
        (ALICE,),
    )
    legacy = found["legacy-chat-agent"]  # an IAM user, created by an IAM user
    assert (legacy.created_by, legacy.granted_by) == (bob, (bob,))
    # The over-broad grants came later, from someone else: first grant first.
    assert found["code-review-agent"].granted_by == (ALICE, bob)
    assert found["data-pipeline-agent"].granted_by == (ALICE, CAROL)
    assert found["model-eval-agent"].created_by == CAROL
    # Created 120 days ago: past what LookupEvents keeps.
    assert found["forecast-agent"].created_by is None
    assert found["forecast-agent"].granted_by == ()
    # Not people: a denied call, a call CloudFormation made, and Leash's own past grant.
    assert found["fraud-scoring-agent"].granted_by == (ALICE,)
    assert found["prompt-lab-agent"].granted_by == (ALICE,)
    assert found["notebook-helper-agent"].granted_by == (ALICE,)
    assert found["ci-deploy-role"].created_by is None
    for agent in (identity for identity in demo.identities if identity.agent):
        assert found[agent.name].created_by == agent.created_by, agent.name
        assert found[agent.name].granted_by == agent.granted_by, agent.name
        assert found[agent.name].ref.account == agent.account.id
    # CloudTrail was read in each account, not only the home one.
    for account in demo.accounts:
        assert len(demo.activity.lookup_times(account.id)) == CALLS[account.name], account.name


async def test_an_aws_service_is_never_named_as_creator(demo: Sandbox) -> None:
    provider = AwsProvider(
        session_factory=demo.session,
        endpoint_url=demo.endpoint_url,
        include_sso=True,
        max_attempts=1,
        lookup_rate=FAST_LOOKUPS,
    )

    found = by_name(await provider.discover())

    # IAM Identity Center (an AWSService identity) created it.
    assert found["AWSReservedSSO_Admin_abc"].created_by is None


async def test_attached_and_inline_policies_are_listed(
    demo: Sandbox, provider: AwsProvider
) -> None:
    await provider.grant(ref(demo.identity("prompt-lab-agent")), GRANT)

    found = by_name(await provider.discover())

    ml_prod = demo.account("ml-prod").id
    pipeline = found["data-pipeline-agent"]
    assert pipeline.attached_policies == (
        f"arn:aws:iam::{ml_prod}:policy/data-pipeline-agent-full-access",
    )
    assert pipeline.inline_policies == ("agent-access",)
    assert found["code-review-agent"].inline_policies == ("agent-access", "broad-access")
    assert found["code-review-agent"].attached_policies == ()
    assert found["legacy-chat-agent"].inline_policies == ("agent-access",)
    # Inventory lists Leash's own grants too.
    assert found["prompt-lab-agent"].inline_policies == ("agent-access", "leash-grant-g1")


async def test_leash_own_writes_are_not_attributed_but_a_humans_are(
    demo: Sandbox, provider: AwsProvider
) -> None:
    ml_dev = demo.account("ml-dev").id
    lab, triage = demo.identity("prompt-lab-agent"), demo.identity("support-triage-agent")
    await provider.grant(ref(lab), GRANT)  # through LeashGrantManager in ml-dev
    await provider.grant(ref(triage), GRANT)  # with Leash's own credentials, home account
    iam: IAMClient = client_in(demo, ml_dev, "iam", session_name="dave@example.com")
    statement = {"Effect": "Allow", "Action": "logs:GetLogEvents", "Resource": "*"}
    document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    policy = iam.create_policy(PolicyName="dave-debug", PolicyDocument=document)["Policy"]
    iam.attach_role_policy(RoleName=lab.name, PolicyArn=policy["Arn"])

    found = by_name(await provider.discover())

    dave = "dave@example.com (via OrganizationAccountAccessRole)"
    assert found[lab.name].granted_by == (ALICE, dave)
    assert found[triage.name].granted_by == (ALICE,)
    # The sandbox did log Leash's writes: discovery left them out on purpose.
    trail: CloudTrailClient = client_in(demo, ml_dev, "cloudtrail", session_name="auditor")
    events = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": lab.name}],
        StartTime=datetime.now(UTC) - timedelta(minutes=5),
    )["Events"]
    assert [(e["EventName"], e["Username"]) for e in events] == [
        ("AttachRolePolicy", "dave@example.com"),
        ("PutRolePolicy", "leash"),
    ]


async def test_a_denied_lookup_keeps_the_accounts_identities(
    demo: Sandbox, provider: AwsProvider
) -> None:
    ml_prod = demo.account("ml-prod").id
    demo.activity.refuse_lookups(ml_prod)

    result = await provider.discover()

    assert set(result.failures) == {f"{ml_prod}:cloudtrail"}
    note = result.failures[f"{ml_prod}:cloudtrail"]
    assert "AccessDeniedException" in note
    assert "LookupEvents" in note
    found = by_name(result)
    assert found["data-pipeline-agent"].ref.account == ml_prod
    assert found["data-pipeline-agent"].created_by is None
    assert found["data-pipeline-agent"].granted_by == ()
    assert found["data-pipeline-agent"].inline_policies == ("agent-access",)
    assert found["model-eval-agent"].created_by == CAROL  # other accounts are unaffected


async def test_a_lookup_throttled_after_retries_keeps_the_accounts_identities(
    demo: Sandbox,
) -> None:
    ml_dev = demo.account("ml-dev").id
    demo.activity.refuse_lookups(ml_dev, "ThrottlingException")
    provider = AwsProvider(
        session_factory=demo.session,
        endpoint_url=demo.endpoint_url,
        max_attempts=2,
        lookup_rate=FAST_LOOKUPS,
    )

    result = await provider.discover()

    assert "ThrottlingException" in result.failures[f"{ml_dev}:cloudtrail"]
    assert len(demo.activity.lookup_times(ml_dev)) == 2  # the SDK retried once, then gave up
    assert by_name(result)["model-eval-agent"].created_by is None
    assert {i.ref.name for i in result.identities if i.ref.account == ml_dev} >= {
        "model-eval-agent",
        "prompt-lab-agent",
    }


async def test_lookups_keep_to_two_a_second_per_account(demo: Sandbox) -> None:
    provider = AwsProvider(
        session_factory=demo.session, endpoint_url=demo.endpoint_url, max_attempts=1
    )

    started = time.monotonic()
    await provider.discover()
    elapsed = time.monotonic() - started

    # Two a second per account (CloudTrail's limit): the busiest account's lookups need at
    # least half a second between each, measured where they are sent.
    assert elapsed >= (max(CALLS.values()) - 1) / 2, elapsed
    for account in demo.accounts:
        times = demo.activity.lookup_times(account.id)
        assert len(times) == CALLS[account.name]
        # Never a burst of three. Times are taken at the server, where arrivals jitter on a
        # busy machine (one delayed arrival shortens a one-second span by up to half).
        spans = [third - first for first, third in zip(times, times[2:], strict=False)]
        assert min(spans) > 0.3, (account.name, spans)


async def test_provenance_can_be_turned_off(demo: Sandbox) -> None:
    provider = AwsProvider(
        session_factory=demo.session,
        endpoint_url=demo.endpoint_url,
        max_attempts=1,
        trace_provenance=False,
    )

    found = by_name(await provider.discover())

    assert found["support-triage-agent"].created_by is None
    assert found["support-triage-agent"].inline_policies == ("agent-access",)
    assert all(demo.activity.lookup_times(account.id) == () for account in demo.accounts)
    assert "cloudtrail:LookupEvents" not in provider.required_permissions()
    assert "cloudtrail:LookupEvents" in AwsProvider(use_organizations=False).required_permissions()


def test_the_throttle_spaces_calls_per_account() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    throttle = LookupThrottle(2.0, clock=lambda: now[0], sleep=sleep)
    for account in ("a", "a", "b", "a"):
        throttle.wait(account)

    assert slept == [0.5, 0.5]  # "b" has its own budget
    assert now[0] == 101.0


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        pytest.param(
            {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/bob"},
            "arn:aws:iam::111122223333:user/bob",
            id="iam-user",
        ),
        pytest.param(
            {"type": "Root", "arn": "arn:aws:iam::111122223333:root"},
            "arn:aws:iam::111122223333:root",
            id="root",
        ),
        pytest.param(
            {
                "type": "AssumedRole",
                "arn": "arn:aws:sts::444455556666:assumed-role/deploy/ci",
                "sessionContext": {
                    "sessionIssuer": {
                        "arn": "arn:aws:iam::444455556666:role/deploy",
                        "accountId": "444455556666",
                        "userName": "deploy",
                    }
                },
            },
            "ci (via arn:aws:iam::444455556666:role/deploy)",
            id="role-in-another-account",
        ),
        pytest.param({"type": "AWSService", "invokedBy": "sso.amazonaws.com"}, None, id="service"),
        pytest.param(
            {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/bob", "invokedBy": "x"},
            None,
            id="invoked-by-a-service",
        ),
    ],
)
def test_principals_are_rendered_readably(identity: dict[str, Any], expected: str | None) -> None:
    assert render(identity, "111122223333") == expected
