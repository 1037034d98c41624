"""The sandbox's Access Advisor over real boto3: reports, job controls, paging, seeded dates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from cloud.aws.tracked_actions import action_level_untracked
from cloud.sandbox import Sandbox, ServiceUse
from cloud.sandbox.aws.access_advisor import ACTION_LEVEL, SERVICE_NAMES
from cloud.sandbox.aws.seed import AGENT_AGE_DAYS, INACTIVE_DAYS
from tests.cloud.conftest import IamIn

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.literals import AccessAdvisorUsageGranularityTypeType
    from mypy_boto3_iam.type_defs import ServiceLastAccessedTypeDef

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "*"}
        ],
    }
)


def allow(*actions: str) -> str:
    statement = {"Effect": "Allow", "Action": list(actions), "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def report(
    iam: IAMClient, arn: str, granularity: AccessAdvisorUsageGranularityTypeType = "ACTION_LEVEL"
) -> dict[str, ServiceLastAccessedTypeDef]:
    job = iam.generate_service_last_accessed_details(Arn=arn, Granularity=granularity)
    details = iam.get_service_last_accessed_details(JobId=job["JobId"])
    assert details["JobStatus"] == "COMPLETED"
    assert "JobCompletionDate" in details
    return {s["ServiceNamespace"]: s for s in details["ServicesLastAccessed"]}


def tracked(service: ServiceLastAccessedTypeDef) -> dict[str, bool]:
    """Map each tracked action to whether it has a last access."""
    return {a["ActionName"]: "LastAccessedTime" in a for a in service["TrackedActionsLastAccessed"]}


async def test_action_level_lists_every_allowed_tracked_action(
    demo: Sandbox, iam_in: IamIn
) -> None:
    pipeline = demo.identity("data-pipeline-agent")

    services = report(iam_in(pipeline.account.id), pipeline.arn)

    assert set(services) == {"glue", "iam", "s3"}
    s3 = tracked(services["s3"])
    assert set(s3) == set(ACTION_LEVEL["s3"])  # `s3:*` allows every one of them
    assert [name for name, used in s3.items() if used] == ["GetBucketLocation"]
    assert "GetObject" not in s3  # data plane: never tracked
    # Services never used carry no last access and no action list.
    assert "LastAuthenticated" not in services["glue"]
    assert "TrackedActionsLastAccessed" not in services["iam"]


async def test_action_list_is_left_out_without_tracked_use_or_action_tracking(
    demo: Sandbox, iam_in: IamIn
) -> None:
    triage = demo.identity("support-triage-agent")
    invoice = demo.identity("invoice-reader-agent")

    triage_services = report(iam_in(triage.account.id), triage.arn)
    invoice_services = report(iam_in(invoice.account.id), invoice.arn)

    assert tracked(triage_services["bedrock"]) == {"InvokeModel": True}
    # s3 was used through GetObject only, which no tracked action records.
    assert "LastAuthenticated" in triage_services["s3"]
    assert "TrackedActionsLastAccessed" not in triage_services["s3"]
    # textract is tracked per service only.
    assert "LastAuthenticated" in invoice_services["textract"]
    assert "TrackedActionsLastAccessed" not in invoice_services["textract"]
    model_eval = demo.identity("model-eval-agent")
    sagemaker = report(iam_in(model_eval.account.id), model_eval.arn)["sagemaker"]
    assert tracked(sagemaker) == {
        "CreateEndpoint": False,
        "CreateProcessingJob": True,
        "DeleteEndpoint": False,
    }


async def test_only_allowed_services_within_400_days_are_reported(
    demo: Sandbox, iam_in: IamIn
) -> None:
    account = demo.account("platform").id
    iam = iam_in(account)
    arn = iam.create_role(RoleName="s3-admin", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    iam.put_role_policy(RoleName="s3-admin", PolicyName="p", PolicyDocument=allow("s3:Create*"))
    long_ago = datetime.now(UTC) - timedelta(days=401)
    demo.activity.record_use(arn, ServiceUse("s3", long_ago, {"s3:CreateBucket": long_ago}))
    demo.activity.record_use(arn, ServiceUse("sqs", datetime.now(UTC)))  # no longer allowed

    services = report(iam, arn)

    assert set(services) == {"s3"}
    assert "LastAuthenticated" not in services["s3"]
    assert "TrackedActionsLastAccessed" not in services["s3"]


async def test_full_access_lists_every_known_service(demo: Sandbox, iam_in: IamIn) -> None:
    iam = iam_in(demo.account("ml-dev").id)
    arn = iam.create_role(RoleName="admin", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    iam.put_role_policy(RoleName="admin", PolicyName="p", PolicyDocument=allow("*"))

    services = report(iam, arn, "SERVICE_LEVEL")

    assert set(services) == set(SERVICE_NAMES) | set(ACTION_LEVEL)
    assert services["s3"]["ServiceName"] == "Amazon S3"


def test_no_tracked_action_is_one_the_provider_calls_untracked() -> None:
    tracked_here = [f"{ns}:{name}" for ns, names in ACTION_LEVEL.items() for name in names]

    assert [action for action in tracked_here if action_level_untracked(action)] == []
    assert all(namespace in SERVICE_NAMES for namespace in ACTION_LEVEL)


async def test_a_users_groups_count(demo: Sandbox, iam_in: IamIn) -> None:
    user = demo.identity("legacy-chat-agent")
    iam = iam_in(user.account.id)
    iam.create_group(GroupName="bots")
    iam.put_group_policy(GroupName="bots", PolicyName="p", PolicyDocument=allow("ec2:Describe*"))
    iam.add_user_to_group(GroupName="bots", UserName=user.name)

    assert set(report(iam, user.arn)) == {"bedrock", "ec2"}


async def test_jobs_fail_or_wait_as_told(demo: Sandbox, iam_in: IamIn) -> None:
    agent = demo.identity("code-review-agent")
    iam = iam_in(agent.account.id)
    demo.activity.hold_jobs(agent.arn, reads=2)
    held = iam.generate_service_last_accessed_details(Arn=agent.arn)["JobId"]
    demo.activity.fail_jobs(agent.arn, code="Busy", message="come back later")
    failing = iam.generate_service_last_accessed_details(Arn=agent.arn)["JobId"]

    held_reads = [iam.get_service_last_accessed_details(JobId=held) for _ in range(3)]
    # The failing job was also started while jobs of this ARN are held for two reads.
    failing_reads = [iam.get_service_last_accessed_details(JobId=failing) for _ in range(3)]

    assert [r["JobStatus"] for r in held_reads] == ["IN_PROGRESS", "IN_PROGRESS", "COMPLETED"]
    assert held_reads[0]["ServicesLastAccessed"] == []
    assert "JobCompletionDate" not in held_reads[0]
    assert {"iam", "s3"} == {s["ServiceNamespace"] for s in held_reads[2]["ServicesLastAccessed"]}
    assert [r["JobStatus"] for r in failing_reads] == ["IN_PROGRESS", "IN_PROGRESS", "FAILED"]
    failed = failing_reads[2]
    assert failed["Error"] == {"Code": "Busy", "Message": "come back later"}
    assert failed["ServicesLastAccessed"] == []
    demo.activity.hold_jobs(agent.arn)  # forever
    stuck = iam.generate_service_last_accessed_details(Arn=agent.arn)["JobId"]
    assert {iam.get_service_last_accessed_details(JobId=stuck)["JobStatus"] for _ in range(5)} == {
        "IN_PROGRESS"
    }
    # Other identities are not affected.
    other = demo.identity("support-triage-agent")
    assert set(report(iam, other.arn)) == {"bedrock", "s3"}
    assert demo.activity.access_advisor_calls() == {
        "GenerateServiceLastAccessedDetails": 4,
        "GetServiceLastAccessedDetails": 12,
    }


async def test_pages_follow_the_marker(demo: Sandbox, iam_in: IamIn) -> None:
    iam = iam_in(demo.account("ml-dev").id)
    arn = iam.create_role(RoleName="wide", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    iam.put_role_policy(RoleName="wide", PolicyName="p", PolicyDocument=allow("*"))
    job = iam.generate_service_last_accessed_details(Arn=arn)["JobId"]

    names: list[str] = []
    pages = 0
    marker: str | None = None
    while True:
        pages += 1
        if marker is None:
            page = iam.get_service_last_accessed_details(JobId=job, MaxItems=5)
        else:
            page = iam.get_service_last_accessed_details(JobId=job, MaxItems=5, Marker=marker)
        assert len(page["ServicesLastAccessed"]) <= 5
        names += [s["ServiceNamespace"] for s in page["ServicesLastAccessed"]]
        if not page["IsTruncated"]:
            assert "Marker" not in page
            break
        marker = page["Marker"]

    expected = sorted({*SERVICE_NAMES, *ACTION_LEVEL})
    assert names == expected
    assert (len(expected), pages) == (16, 4)
    demo.activity.page_access_advisor(4)
    first = iam.get_service_last_accessed_details(JobId=job)
    assert [s["ServiceNamespace"] for s in first["ServicesLastAccessed"]] == expected[:4]
    assert first["IsTruncated"] is True


async def test_bad_requests_are_refused(demo: Sandbox, iam_in: IamIn) -> None:
    iam = iam_in(demo.account("platform").id)
    agent = demo.identity("prompt-lab-agent")
    with pytest.raises(ClientError) as unknown_job:
        iam.get_service_last_accessed_details(JobId="00000000-0000-0000-0000-000000000000")
    assert unknown_job.value.response["Error"]["Code"] == "NoSuchEntity"
    with pytest.raises(ClientError) as elsewhere:
        iam.generate_service_last_accessed_details(Arn=agent.arn)  # an ml-dev role
    assert elsewhere.value.response["Error"]["Code"] == "NoSuchEntity"


async def test_seeded_agents_are_old_and_last_used_when_their_activity_says(
    demo: Sandbox, iam_in: IamIn
) -> None:
    now = datetime.now(UTC)
    notebook = demo.identity("notebook-helper-agent")
    legacy = demo.identity("legacy-chat-agent")

    role = iam_in(notebook.account.id).get_role(RoleName=notebook.name)["Role"]
    user = iam_in(legacy.account.id).get_user(UserName=legacy.name)["User"]
    key = iam_in(legacy.account.id).list_access_keys(UserName=legacy.name)["AccessKeyMetadata"][0]
    key_use = iam_in(legacy.account.id).get_access_key_last_used(AccessKeyId=key["AccessKeyId"])

    assert (now - role["CreateDate"]).days == AGENT_AGE_DAYS
    assert (now - user["CreateDate"]).days == AGENT_AGE_DAYS
    assert (now - role["RoleLastUsed"]["LastUsedDate"]).days == INACTIVE_DAYS
    assert (now - key_use["AccessKeyLastUsed"]["LastUsedDate"]).days == 5
    assert key_use["AccessKeyLastUsed"]["ServiceName"] == "bedrock"
    later = now - timedelta(days=3)
    demo.set_dates(notebook, created_at=later, last_used_at=later)
    changed = iam_in(notebook.account.id).get_role(RoleName=notebook.name)["Role"]
    assert abs(changed["CreateDate"] - later) < timedelta(seconds=1)
    assert abs(changed["RoleLastUsed"]["LastUsedDate"] - later) < timedelta(seconds=1)
