"""The sandbox: a seeded organisation and the APIs Leash adds to moto, over real boto3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError

from cloud.sandbox import Sandbox
from tests.cloud.conftest import IamIn, as_dict
from tests.e2e.helpers import account_iam

if TYPE_CHECKING:
    from mypy_boto3_cloudtrail.type_defs import LookupAttributeTypeDef
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.literals import AccessAdvisorUsageGranularityTypeType
    from mypy_boto3_iam.type_defs import ServiceLastAccessedTypeDef


async def test_seeded_organization_has_three_accounts(demo: Sandbox) -> None:
    organizations = demo.session().client("organizations", endpoint_url=demo.endpoint_url)

    accounts = organizations.list_accounts()["Accounts"]

    assert sorted(a["Id"] for a in accounts) == sorted(demo.account_ids)
    assert len(accounts) == 3
    # moto names the management account "master" and offers no API to rename it.
    assert {a["Name"] for a in accounts} == {"master", "ml-prod", "ml-dev"}
    assert [a.name for a in demo.accounts] == ["platform", "ml-prod", "ml-dev"]
    assert (
        demo.accounts[0].id
        == organizations.describe_organization()["Organization"]["MasterAccountId"]
    )


async def test_member_accounts_trust_the_management_account_with_leash_roles(
    demo: Sandbox, iam_in: IamIn
) -> None:
    management = demo.accounts[0].id
    for member in demo.accounts[1:]:
        role = iam_in(member.id).get_role(RoleName="LeashReadOnly")["Role"]
        statement = as_dict(role["AssumeRolePolicyDocument"])["Statement"][0]
        assert statement["Principal"] == {"AWS": f"arn:aws:iam::{management}:root"}


async def test_assume_role_needs_an_existing_role_that_trusts_the_caller(demo: Sandbox) -> None:
    sts = demo.session().client("sts", endpoint_url=demo.endpoint_url)
    member = demo.accounts[1].id

    assumed = sts.assume_role(
        RoleArn=f"arn:aws:iam::{member}:role/LeashReadOnly", RoleSessionName="leash-tests"
    )
    assert assumed["AssumedRoleUser"]["Arn"].startswith(f"arn:aws:sts::{member}:assumed-role/")
    for arn in (
        f"arn:aws:iam::{member}:role/no-such-role",
        f"arn:aws:iam::{member}:role/invoice-reader-agent",  # trusts bedrock, not the account
    ):
        with pytest.raises(ClientError) as caught:
            sts.assume_role(RoleArn=arn, RoleSessionName="leash-tests")
        assert caught.value.response["Error"]["Code"] == "AccessDenied"


async def test_seeded_identities_carry_owner_and_team_tags(demo: Sandbox, iam_in: IamIn) -> None:
    agents = [identity for identity in demo.identities if identity.agent]
    assert len(agents) == 12
    assert {a.owner for a in agents} == {"owner-a", "owner-b", None}
    assert len({a.name for a in demo.identities}) == len(demo.identities)
    for agent in agents:
        iam = iam_in(agent.account.id)
        if agent.kind == "user":
            tags = iam.list_user_tags(UserName=agent.name)["Tags"]
        else:
            tags = iam.list_role_tags(RoleName=agent.name)["Tags"]
        expected = {"leash:agent": "true", "team": agent.team or ""}
        if agent.owner:
            expected["owner"] = agent.owner
        assert {t["Key"]: t["Value"] for t in tags} == expected, agent.name


def last_accessed(
    iam: IAMClient, arn: str, granularity: AccessAdvisorUsageGranularityTypeType
) -> dict[str, ServiceLastAccessedTypeDef]:
    """Run an Access Advisor job for `arn` and return its services by namespace."""
    job = iam.generate_service_last_accessed_details(Arn=arn, Granularity=granularity)
    details = iam.get_service_last_accessed_details(JobId=job["JobId"])
    assert details["JobStatus"] == "COMPLETED"
    assert details["JobType"] == granularity
    return {s["ServiceNamespace"]: s for s in details["ServicesLastAccessed"]}


async def test_access_advisor_reports_recent_and_stale_service_use(
    demo: Sandbox, iam_in: IamIn
) -> None:
    now = datetime.now(UTC)

    def services(
        name: str, granularity: AccessAdvisorUsageGranularityTypeType = "SERVICE_LEVEL"
    ) -> dict[str, ServiceLastAccessedTypeDef]:
        identity = demo.identity(name)
        return last_accessed(iam_in(identity.account.id), identity.arn, granularity)

    triage = services("support-triage-agent", "ACTION_LEVEL")
    assert set(triage) == {"bedrock", "s3"}
    assert now - triage["bedrock"]["LastAuthenticated"] < timedelta(days=2)
    tracked = triage["bedrock"]["TrackedActionsLastAccessed"]
    assert [a["ActionName"] for a in tracked] == ["InvokeModel"]

    stale = services("notebook-helper-agent")
    assert set(stale) == {"bedrock", "s3"}
    assert all(now - s["LastAuthenticated"] > timedelta(days=120) for s in stale.values())
    # Granted by the over-broad inline policy but never used: listed without a last access.
    review = services("code-review-agent")
    assert "LastAuthenticated" not in review["iam"]
    assert review["iam"]["TotalAuthenticatedEntities"] == 0
    assert "TrackedActionsLastAccessed" not in review["s3"]
    # Users are answered too.
    assert set(services("legacy-chat-agent")) == {"bedrock"}


async def test_access_advisor_refuses_an_unknown_role(demo: Sandbox) -> None:
    iam = demo.session().client("iam", endpoint_url=demo.endpoint_url)
    with pytest.raises(ClientError) as caught:
        iam.generate_service_last_accessed_details(
            Arn=f"arn:aws:iam::{demo.accounts[0].id}:role/ghost"
        )
    assert caught.value.response["Error"]["Code"] == "NoSuchEntity"


async def test_lookup_events_returns_seeded_events(demo: Sandbox) -> None:
    cloudtrail = demo.session().client("cloudtrail", endpoint_url=demo.endpoint_url)

    events = cloudtrail.lookup_events(
        LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "support-triage-agent"}]
    )["Events"]

    assert [(e["EventSource"], e["EventName"]) for e in events] == [
        ("bedrock.amazonaws.com", "InvokeModel"),
        ("s3.amazonaws.com", "GetObject"),
    ]
    assert events[0]["EventTime"] > events[1]["EventTime"]


async def test_lookup_events_honours_the_time_window_and_account(demo: Sandbox) -> None:
    ml_dev = demo.account("ml-dev")
    session = demo.session()
    credentials = session.client("sts", endpoint_url=demo.endpoint_url).assume_role(
        RoleArn=f"arn:aws:iam::{ml_dev.id}:role/LeashReadOnly", RoleSessionName="leash-tests"
    )["Credentials"]
    cloudtrail = session.client(
        "cloudtrail",
        endpoint_url=demo.endpoint_url,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    stale: list[LookupAttributeTypeDef] = [
        {"AttributeKey": "Username", "AttributeValue": "notebook-helper-agent"}
    ]

    # The inactive agent's last events are older than LookupEvents' default 90 days.
    assert cloudtrail.lookup_events(LookupAttributes=stale)["Events"] == []
    older = cloudtrail.lookup_events(
        LookupAttributes=stale, StartTime=datetime.now(UTC) - timedelta(days=365)
    )["Events"]
    assert {e["EventName"] for e in older} == {"InvokeModel", "GetObject"}
    page = cloudtrail.lookup_events(MaxResults=2)
    assert len(page["Events"]) == 2
    assert "NextToken" in page
    everything = [
        event
        for result in cloudtrail.get_paginator("lookup_events").paginate(
            StartTime=datetime.now(UTC) - timedelta(days=365)
        )
        for event in result["Events"]
    ]

    def callers(*, iam: bool) -> set[str]:
        return {
            e["Username"] for e in everything if (e["EventSource"] == "iam.amazonaws.com") is iam
        }

    assert callers(iam=False) == {"model-eval-agent", "notebook-helper-agent", "prompt-lab-agent"}
    # ml-dev's IAM history names only the humans and the Leash role that acted in ml-dev.
    assert callers(iam=True) == {"alice@example.com", "carol@example.com", "leash"}


async def test_env_points_an_sdk_at_the_sandbox(demo: Sandbox) -> None:
    env = demo.env
    assert env["AWS_ENDPOINT_URL"] == demo.endpoint_url
    assert demo.endpoint_url.startswith("http://127.0.0.1:")
    assert env["AWS_DEFAULT_REGION"] == demo.region == "us-east-1"
    assert env["AWS_ACCESS_KEY_ID"] == "testing"


def _roles(sandbox: Sandbox) -> dict[str, list[str]]:
    """Every account's role names, read with credentials issued after the last reset."""
    return {
        account.name: sorted(
            r["RoleName"] for r in account_iam(sandbox, account.name).list_roles()["Roles"]
        )
        for account in sandbox.accounts
    }


async def test_a_reset_restores_exactly_the_seeded_organization(demo: Sandbox) -> None:
    """Resets after the first copy the seed instead of replaying it; nothing leaks across."""
    demo.reset()
    seeded = _roles(demo)
    events = {a.id: len(demo.activity.events(a.id)) for a in demo.accounts}
    iam = account_iam(demo, "ml-prod")
    policies = iam.list_role_policies(RoleName="invoice-reader-agent")["PolicyNames"]
    iam.delete_role_policy(RoleName="invoice-reader-agent", PolicyName=policies[0])
    iam.create_role(RoleName="intruder", AssumeRolePolicyDocument="{}")
    assert "intruder" in _roles(demo)["ml-prod"]

    demo.reset()
    assert _roles(demo) == seeded
    iam = account_iam(demo, "ml-prod")
    assert iam.list_role_policies(RoleName="invoice-reader-agent")["PolicyNames"] == policies
    assert {a.id: len(demo.activity.events(a.id)) for a in demo.accounts} == events

    demo.reset(seed=False)
    bare = demo.session().client("iam", endpoint_url=demo.endpoint_url)
    assert bare.list_roles()["Roles"] == []
    demo.reset()
    assert _roles(demo) == seeded
