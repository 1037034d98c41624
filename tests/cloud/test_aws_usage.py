"""AwsProvider.usage: Access Advisor against the sandbox, and the judgement of its report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from cloud.aws import AwsProvider
from cloud.aws.tracked_actions import assess
from cloud.aws.usage import USAGE_PERMISSIONS, is_leash_policy
from cloud.base import (
    CloudConfigurationError,
    CloudNotFoundError,
    IdentityKind,
    IdentityRef,
    UsageReport,
    UsageStatus,
)
from cloud.sandbox import Sandbox, ServiceUse
from cloud.sandbox.aws.access_advisor import ACTION_LEVEL, SERVICE_NAMES
from cloud.sandbox.aws.seed import INACTIVE_DAYS
from tests.cloud.conftest import FAST_LOOKUPS, IamIn, ref

WINDOW = timedelta(days=90)
S3_TRACKED = {f"s3:{name}" for name in ACTION_LEVEL["s3"]}
# What `s3:*` leaves unknown once its tracked actions are judged: S3's data-plane actions.
S3_DATA_PLANE = {
    f"s3:{name}"
    for name in (
        "AbortMultipartUpload", "DeleteObject", "DeleteObjectTagging", "DeleteObjectVersion",
        "GetObject", "GetObjectAcl", "GetObjectAttributes", "GetObjectTagging",
        "GetObjectVersion", "ListBucket", "ListBucketMultipartUploads", "ListBucketVersions",
        "ListMultipartUploadParts", "PutObject", "PutObjectAcl", "PutObjectTagging",
        "RestoreObject",
    )
}  # fmt: skip
TRUST = json.dumps(
    {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole"}]}
)  # fmt: skip


def allow(*actions: str, effect: str = "Allow", key: str = "Action") -> str:
    statement = {"Effect": effect, key: list(actions), "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def quick(demo: Sandbox, *, poll: float = 0.01, max_wait: float = 60.0) -> AwsProvider:
    """A provider that polls Access Advisor every 10 ms (unless told otherwise)."""
    return AwsProvider(
        session_factory=demo.session,
        endpoint_url=demo.endpoint_url,
        max_attempts=1,
        lookup_rate=FAST_LOOKUPS,
        usage_poll_interval=poll,
        usage_max_wait=max_wait,
    )


async def usage_of(demo: Sandbox, name: str, window: timedelta = WINDOW) -> UsageReport:
    return await quick(demo).usage(ref(demo.identity(name)), datetime.now(UTC) - window)


def days_ago(report: UsageReport) -> dict[str, int]:
    now = datetime.now(UTC)
    return {action: (now - when).days for action, when in report.used.items()}


@pytest.mark.parametrize(
    ("name", "status", "used", "not_used", "unknown"),
    [
        pytest.param(
            "support-triage-agent",
            UsageStatus.COMPLETE,
            {"bedrock:InvokeModel": 1, "s3:*": 2},
            set(),
            {"s3:GetObject"},
            id="data-plane-action-is-unknown",
        ),
        pytest.param(
            "code-review-agent",
            UsageStatus.COMPLETE,
            {"s3:*": 2},
            {"iam:*"},
            {"s3:GetObject"},
            id="whole-unused-service",
        ),
        pytest.param(
            "data-pipeline-agent",
            UsageStatus.COMPLETE,
            {"s3:GetBucketLocation": 1},
            {"glue:*"} | S3_TRACKED - {"s3:GetBucketLocation"},
            {"iam:PassRole"} | S3_DATA_PLANE,  # s3:* is judged by its tracked actions
            id="unused-actions-of-a-wildcard",
        ),
        pytest.param(
            "model-eval-agent",
            UsageStatus.COMPLETE,
            {"sagemaker:CreateProcessingJob": 2, "s3:*": 2},
            {"sagemaker:CreateEndpoint", "sagemaker:DeleteEndpoint"},
            {"s3:GetObject"},
            id="unused-exact-actions",
        ),
        pytest.param(
            "invoice-reader-agent",
            UsageStatus.SERVICE_LEVEL,
            {"s3:*": 1, "textract:*": 1},
            set(),
            {"s3:GetObject", "textract:AnalyzeDocument"},
            id="service-level-only",
        ),
        pytest.param(
            "notebook-helper-agent",
            UsageStatus.COMPLETE,
            {},
            {"bedrock:*", "s3:*"},
            set(),
            id="inactive",
        ),
        pytest.param(
            "legacy-chat-agent",
            UsageStatus.COMPLETE,
            {"bedrock:InvokeModel": 5},
            set(),
            set(),
            id="user",
        ),
    ],
)
async def test_seeded_agents_usage_over_90_days(
    demo: Sandbox,
    name: str,
    status: UsageStatus,
    used: dict[str, int],
    not_used: set[str],
    unknown: set[str],
) -> None:
    report = await usage_of(demo, name)

    assert report.status is status
    assert days_ago(report) == used
    assert set(report.not_used) == not_used
    assert set(report.unknown) == unknown
    assert list(report.not_used) == sorted(report.not_used)
    assert list(report.unknown) == sorted(report.unknown)
    assert report.note == ""


async def test_granted_lists_inline_and_managed_allows_but_not_leash_policies(
    demo: Sandbox, iam_in: IamIn
) -> None:
    agent = demo.identity("code-review-agent")
    iam = iam_in(agent.account.id)
    for policy, document in (
        ("leash-grant-g1", allow("ec2:RunInstances")),
        ("leash-restrict", allow("iam:*", effect="Deny")),
        ("leash-guardrail", allow("iam:PassRole", effect="Deny")),
        ("extra", allow("lambda:GetFunction", effect="Deny")),
    ):
        iam.put_role_policy(RoleName=agent.name, PolicyName=policy, PolicyDocument=document)

    report = await usage_of(demo, "code-review-agent")

    assert report.granted == ("iam:*", "s3:GetObject")
    pipeline = await usage_of(demo, "data-pipeline-agent")
    assert pipeline.granted == ("glue:StartJobRun", "iam:PassRole", "s3:*")


async def test_pass_role_alone_is_unknown_not_an_unused_service(demo: Sandbox) -> None:
    report = await usage_of(demo, "data-pipeline-agent")

    assert "iam:PassRole" in report.unknown
    assert not any(action.startswith("iam:") for action in report.not_used)
    assert "glue:*" in report.not_used  # the other unused service of the same agent is judged


async def test_a_longer_window_sees_the_inactive_agent_use(demo: Sandbox) -> None:
    agent = demo.identity("notebook-helper-agent")
    assert demo.organization is not None
    # Measured from when the seed stamped its dates: a restored seed may be minutes old.
    idle = demo.organization.seeded_at - timedelta(days=INACTIVE_DAYS)

    recent = await usage_of(demo, agent.name)
    year = await usage_of(demo, agent.name, timedelta(days=365))

    assert recent.last_activity_at is not None
    assert abs(recent.last_activity_at - idle) < timedelta(minutes=5)
    assert days_ago(year) == {"bedrock:InvokeModel": 200, "s3:*": 200}
    assert year.not_used == ()
    assert year.unknown == ("s3:GetObject",)


async def test_last_activity_takes_role_and_access_key_last_use(demo: Sandbox) -> None:
    now = datetime.now(UTC)
    role = demo.identity("prompt-lab-agent")
    user = demo.identity("legacy-chat-agent")
    demo.set_dates(role, last_used_at=now - timedelta(hours=3))
    demo.set_dates(user, last_used_at=now - timedelta(hours=2))

    role_report = await usage_of(demo, role.name)
    user_report = await usage_of(demo, user.name)

    # Access Advisor says a day and five days ago; the sessions and the key say hours ago.
    assert role_report.last_activity_at is not None
    assert abs(role_report.last_activity_at - (now - timedelta(hours=3))) < timedelta(seconds=2)
    assert user_report.last_activity_at is not None
    assert abs(user_report.last_activity_at - (now - timedelta(hours=2))) < timedelta(seconds=2)


async def test_a_users_group_policies_are_granted(demo: Sandbox, iam_in: IamIn) -> None:
    user = demo.identity("legacy-chat-agent")
    iam = iam_in(user.account.id)
    iam.create_group(GroupName="chat-bots")
    iam.put_group_policy(
        GroupName="chat-bots", PolicyName="logs", PolicyDocument=allow("lambda:GetFunction")
    )
    managed = iam.create_policy(PolicyName="chat-kms", PolicyDocument=allow("kms:Decrypt"))
    iam.attach_group_policy(GroupName="chat-bots", PolicyArn=managed["Policy"]["Arn"])
    iam.add_user_to_group(GroupName="chat-bots", UserName=user.name)

    report = await usage_of(demo, user.name)

    assert report.granted == ("bedrock:InvokeModel", "kms:Decrypt", "lambda:GetFunction")
    assert report.not_used == ("kms:*", "lambda:*")


async def test_wildcards_and_not_action(demo: Sandbox, iam_in: IamIn) -> None:
    account = demo.account("platform").id
    iam = iam_in(account)
    arn = iam.create_role(RoleName="bucket-agent", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    iam.put_role_policy(
        RoleName="bucket-agent", PolicyName="read", PolicyDocument=allow("s3:Get*", "s3:Put*")
    )
    iam.put_role_policy(
        RoleName="bucket-agent", PolicyName="most", PolicyDocument=allow("iam:*", key="NotAction")
    )
    when = datetime.now(UTC) - timedelta(days=3)
    demo.activity.record_use(arn, ServiceUse("s3", when, {"s3:PutBucketPolicy": when}))
    identity = IdentityRef("aws", account, arn, "bucket-agent", IdentityKind.ROLE)

    report = await quick(demo).usage(identity, datetime.now(UTC) - WINDOW)

    assert report.granted == ("s3:Get*", "s3:Put*")
    assert days_ago(report) == {"s3:PutBucketPolicy": 3}
    assert set(report.not_used) == {
        a for a in S3_TRACKED if a.startswith(("s3:Get", "s3:Put")) and a != "s3:PutBucketPolicy"
    }
    assert "s3:CreateBucket" not in report.not_used  # tracked, but not granted
    # Each wildcard is judged by S3's tracked actions; only its data-plane part is unknown.
    assert set(report.unknown) == {a for a in S3_DATA_PLANE if a.startswith(("s3:Get", "s3:Put"))}
    assert "1 NotAction statement(s)" in report.note


async def test_full_admin_is_judged_service_by_service(demo: Sandbox, iam_in: IamIn) -> None:
    account = demo.account("platform").id
    iam = iam_in(account)
    arn = iam.create_role(RoleName="admin-agent", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    iam.put_role_policy(RoleName="admin-agent", PolicyName="all", PolicyDocument=allow("*"))
    when = datetime.now(UTC) - timedelta(days=1)
    demo.activity.record_use(arn, ServiceUse("lambda", when, {"lambda:GetFunction": when}))
    demo.activity.record_use(arn, ServiceUse("sqs", when, {}))
    identity = IdentityRef("aws", account, arn, "admin-agent", IdentityKind.ROLE)

    report = await quick(demo).usage(identity, datetime.now(UTC) - WINDOW)

    unused_services = {f"{n}:*" for n in {*SERVICE_NAMES, *ACTION_LEVEL} - {"lambda", "sqs"}}
    unused_lambda = {f"lambda:{n}" for n in ACTION_LEVEL["lambda"]} - {"lambda:GetFunction"}
    assert set(report.not_used) == unused_services | unused_lambda
    assert days_ago(report) == {"lambda:GetFunction": 1, "sqs:*": 1}
    assert report.unknown == ("*",)
    assert report.status is UsageStatus.SERVICE_LEVEL  # sqs is reported as a whole only


async def test_a_failed_job_gives_unknown_usage(demo: Sandbox) -> None:
    agent = demo.identity("code-review-agent")
    demo.activity.fail_jobs(agent.arn, code="ServiceFailure", message="try again later")

    report = await usage_of(demo, agent.name)

    assert report.status is UsageStatus.UNKNOWN
    assert "failed (ServiceFailure): try again later" in report.note
    assert report.granted == ("iam:*", "s3:GetObject")
    assert report.used == {}
    assert report.not_used == ()
    assert report.last_activity_at is not None  # RoleLastUsed is still known


async def test_a_job_that_never_completes_gives_unknown_after_max_wait(demo: Sandbox) -> None:
    agent = demo.identity("data-pipeline-agent")
    demo.activity.hold_jobs(agent.arn)
    provider = quick(demo, poll=0.02, max_wait=0.2)

    report = await provider.usage(ref(agent), datetime.now(UTC) - WINDOW)

    assert report.status is UsageStatus.UNKNOWN
    assert "did not complete within 0.2 s" in report.note
    assert report.not_used == ()
    assert report.used == {}
    reads = demo.activity.access_advisor_calls()["GetServiceLastAccessedDetails"]
    assert 2 <= reads <= 12


async def test_a_slow_job_is_polled_until_it_completes(demo: Sandbox) -> None:
    agent = demo.identity("model-eval-agent")
    demo.activity.hold_jobs(agent.arn, reads=2)

    report = await usage_of(demo, agent.name)

    assert report.status is UsageStatus.COMPLETE
    assert set(report.not_used) == {"sagemaker:CreateEndpoint", "sagemaker:DeleteEndpoint"}
    assert demo.activity.access_advisor_calls() == {
        "GenerateServiceLastAccessedDetails": 1,
        "GetServiceLastAccessedDetails": 3,
    }


async def test_every_page_of_the_report_is_read(demo: Sandbox) -> None:
    whole = await usage_of(demo, "data-pipeline-agent")
    demo.activity.page_access_advisor(1)

    paged = await usage_of(demo, "data-pipeline-agent")

    assert (paged.used, paged.not_used, paged.unknown) == (
        whole.used,
        whole.not_used,
        whole.unknown,
    )
    # One read each for glue, iam and s3 on the paged run, one for the whole report before.
    assert demo.activity.access_advisor_calls()["GetServiceLastAccessedDetails"] == 1 + 3


async def test_usage_of_a_missing_identity_is_not_found(demo: Sandbox) -> None:
    account = demo.account("ml-prod").id
    for kind, name in ((IdentityKind.ROLE, "ghost-agent"), (IdentityKind.USER, "ghost-user")):
        missing = IdentityRef("aws", account, f"arn:aws:iam::{account}:{kind}/{name}", name, kind)
        with pytest.raises(CloudNotFoundError, match=name):
            await quick(demo).usage(missing, datetime.now(UTC) - WINDOW)


async def test_usage_refuses_what_it_cannot_read(demo: Sandbox) -> None:
    agent = ref(demo.identity("prompt-lab-agent"))
    provider = quick(demo)
    with pytest.raises(CloudConfigurationError, match="timezone-aware"):
        await provider.usage(agent, datetime(2025, 1, 1))
    azure = IdentityRef("azure", "sub", "id", "mi", IdentityKind.MANAGED_IDENTITY)
    with pytest.raises(CloudConfigurationError, match="azure"):
        await provider.usage(azure, datetime.now(UTC))
    with pytest.raises(CloudConfigurationError, match="must be positive"):
        AwsProvider(usage_poll_interval=0.0)
    with pytest.raises(CloudConfigurationError, match="must be positive"):
        AwsProvider(usage_max_wait=-1.0)


def test_leash_policies_are_recognised_by_name() -> None:
    assert [
        is_leash_policy(name)
        for name in (
            "leash-grant-g1",
            "leash-restrict",
            "leash-quarantine",
            "leash-guardrail",
            "leash-restrict-2",
            "leash-grant-",
            "leashed",
            "agent-access",
            "leash-restricted",
        )
    ] == [True, True, True, True, True, True, False, False, False]
    assert {
        "iam:GenerateServiceLastAccessedDetails",
        "iam:GetServiceLastAccessedDetails",
    } <= set(USAGE_PERMISSIONS)


def test_assess_judges_patterns_over_many_services_per_service() -> None:
    identity = IdentityRef("aws", "1", "arn", "x", IdentityKind.ROLE)
    since = datetime(2025, 1, 1, tzinfo=UTC)
    recent, old = since + timedelta(days=1), since - timedelta(days=1)

    report = assess(
        identity,
        since=since,
        granted=["*:Describe*", "ec2:RunInstances", "iam:PassRole", "iam:Pass*", "x-ray:Get"],
        services=[
            {
                "ServiceName": "Amazon EC2",
                "ServiceNamespace": "ec2",
                "LastAuthenticated": recent,
                "TrackedActionsLastAccessed": [
                    {"ActionName": "DescribeInstances", "LastAccessedTime": recent},
                    {"ActionName": "DescribeVolumes", "LastAccessedTime": old},
                    {"ActionName": "RunInstances"},
                ],
            },
            {"ServiceName": "IAM", "ServiceNamespace": "iam", "LastAuthenticated": old},
        ],
        last_used=[old],
    )

    assert report.used == {"ec2:DescribeInstances": recent}
    assert report.not_used == ("ec2:DescribeVolumes", "ec2:RunInstances", "iam:*")
    # iam:PassRole is invisible to Access Advisor; x-ray was not reported at all.
    assert report.unknown == ("*:Describe*", "iam:PassRole", "x-ray:Get")
    assert report.status is UsageStatus.COMPLETE
    assert report.last_activity_at == recent
    assert report.note == "not reported by Access Advisor: x-ray:Get"
