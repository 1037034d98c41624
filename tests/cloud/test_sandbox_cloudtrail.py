"""The sandbox's CloudTrail: LookupEvents as AWS answers it, fed by the seed and by IAM writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError

from cloud.sandbox import Sandbox

if TYPE_CHECKING:
    from mypy_boto3_cloudtrail import CloudTrailClient
    from mypy_boto3_cloudtrail.literals import LookupAttributeKeyType
    from mypy_boto3_cloudtrail.type_defs import (
        EventTypeDef,
        LookupAttributeTypeDef,
        LookupEventsRequestTypeDef,
    )
    from mypy_boto3_iam import IAMClient

YEAR = timedelta(days=365)


def client_in(
    demo: Sandbox, account: str, service: str, *, session_name: str, region: str = "us-east-1"
) -> Any:
    """Return a client acting in `account` through OrganizationAccountAccessRole."""
    session = demo.session()
    credentials = session.client("sts", endpoint_url=demo.endpoint_url).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
        RoleSessionName=session_name,
    )["Credentials"]
    return session.client(
        service,  # type: ignore[call-overload]
        endpoint_url=demo.endpoint_url,
        region_name=region,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def trail_in(demo: Sandbox, name: str, *, region: str = "us-east-1") -> CloudTrailClient:
    """Return a CloudTrail client acting in the seeded account `name`."""
    account = demo.account(name)
    if account.management:
        return demo.session().client(
            "cloudtrail", endpoint_url=demo.endpoint_url, region_name=region
        )
    client: CloudTrailClient = client_in(
        demo, account.id, "cloudtrail", session_name="auditor", region=region
    )
    return client


def attribute(key: LookupAttributeKeyType, value: str) -> list[LookupAttributeTypeDef]:
    return [{"AttributeKey": key, "AttributeValue": value}]


def detail(event: EventTypeDef) -> dict[str, Any]:
    parsed = json.loads(event["CloudTrailEvent"])
    assert isinstance(parsed, dict)
    return parsed


async def test_create_role_events_carry_the_cloudtrail_record(demo: Sandbox) -> None:
    platform = demo.account("platform").id
    trail = trail_in(demo, "platform")

    events = trail.lookup_events(LookupAttributes=attribute("EventName", "CreateRole"))["Events"]

    created = {detail(e)["requestParameters"]["roleName"]: e for e in events}
    assert set(created) == {
        "support-triage-agent",
        "ticket-router-agent",
        "knowledge-base-agent",
        "code-review-agent",
        "AWSReservedSSO_Admin_abc",
    }
    event = created["support-triage-agent"]
    record = detail(event)
    assert record["eventName"] == event["EventName"] == "CreateRole"
    assert record["eventSource"] == "iam.amazonaws.com"
    assert record["recipientAccountId"] == platform
    when = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(when - event["EventTime"]) < timedelta(seconds=1)
    assert timedelta(days=59) < datetime.now(UTC) - when < timedelta(days=61)
    identity = record["userIdentity"]
    assert identity["type"] == "AssumedRole"
    assert identity["arn"] == (
        f"arn:aws:sts::{platform}:assumed-role/AWSReservedSSO_Admin_abc/alice@example.com"
    )
    issuer = identity["sessionContext"]["sessionIssuer"]
    assert issuer["arn"] == (
        f"arn:aws:iam::{platform}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_abc"
    )
    assert issuer["userName"] == "AWSReservedSSO_Admin_abc"
    assert event["Username"] == "alice@example.com"
    service = detail(created["AWSReservedSSO_Admin_abc"])["userIdentity"]
    assert service == {"type": "AWSService", "invokedBy": "sso.amazonaws.com"}


async def test_lookup_by_resource_name_honours_the_90_day_window(demo: Sandbox) -> None:
    trail = trail_in(demo, "ml-prod")
    forecast = attribute("ResourceName", "forecast-agent")

    assert trail.lookup_events(LookupAttributes=forecast)["Events"] == []
    older = trail.lookup_events(
        LookupAttributes=forecast, StartTime=datetime.now(UTC) - YEAR, EndTime=datetime.now(UTC)
    )["Events"]
    assert [e["EventName"] for e in older] == ["PutRolePolicy", "CreateRole"]
    # Only the events of the caller's account: data-pipeline's IAM history, two humans.
    pipeline = trail.lookup_events(
        LookupAttributes=attribute("ResourceName", "data-pipeline-agent")
    )
    assert [(e["EventName"], e["Username"]) for e in pipeline["Events"]] == [
        ("AttachRolePolicy", "carol@example.com"),
        ("PutRolePolicy", "alice@example.com"),
        ("CreateRole", "alice@example.com"),
    ]


async def test_pages_follow_next_token_without_gaps_or_repeats(demo: Sandbox) -> None:
    trail = trail_in(demo, "ml-dev")
    puts = attribute("EventName", "PutRolePolicy")
    whole = trail.lookup_events(LookupAttributes=puts, MaxResults=50)
    assert "NextToken" not in whole

    pages: list[str] = []
    request: LookupEventsRequestTypeDef = {"LookupAttributes": puts, "MaxResults": 2}
    while True:
        page = trail.lookup_events(**request)
        assert len(page["Events"]) <= 2
        pages.extend(e["EventId"] for e in page["Events"])
        if "NextToken" not in page:
            break
        request["NextToken"] = page["NextToken"]

    assert pages == [e["EventId"] for e in whole["Events"]]
    assert len(pages) == 5  # 3 agents' access, carol's stack policy, Leash's past grant


async def test_lookup_refuses_what_cloudtrail_refuses(demo: Sandbox) -> None:
    trail = trail_in(demo, "platform")
    now = datetime.now(UTC)

    with pytest.raises(ClientError) as two:
        trail.lookup_events(
            LookupAttributes=[*attribute("EventName", "CreateRole"), *attribute("Username", "x")]
        )
    assert two.value.response["Error"]["Code"] == "InvalidLookupAttributesException"
    with pytest.raises(ClientError) as backwards:
        trail.lookup_events(StartTime=now, EndTime=now - timedelta(days=1))
    assert backwards.value.response["Error"]["Code"] == "InvalidTimeRangeException"
    demo.activity.refuse_lookups(demo.account("platform").id)
    with pytest.raises(ClientError) as denied:
        trail.lookup_events()
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert len(demo.activity.lookup_times(demo.account("platform").id)) == 3


async def test_iam_events_are_in_us_east_1_only(demo: Sandbox) -> None:
    created = attribute("EventName", "CreateRole")

    elsewhere = trail_in(demo, "ml-dev", region="eu-west-1").lookup_events(LookupAttributes=created)
    home = trail_in(demo, "ml-dev").lookup_events(LookupAttributes=created)

    assert elsewhere["Events"] == []
    assert [e["Username"] for e in home["Events"]] == [
        "carol@example.com",  # model-eval-agent, 30 days ago
        "alice@example.com",
        "alice@example.com",
    ]


async def test_iam_writes_are_logged_with_their_caller(demo: Sandbox) -> None:
    ml_dev = demo.account("ml-dev").id
    iam: IAMClient = client_in(demo, ml_dev, "iam", session_name="erin@example.com")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.create_role(RoleName="erin-agent", AssumeRolePolicyDocument=json.dumps(trust))
    with pytest.raises(ClientError):
        iam.delete_role_policy(RoleName="erin-agent", PolicyName="never-written")
    trail = trail_in(demo, "ml-dev")

    events = trail.lookup_events(
        LookupAttributes=attribute("ResourceName", "erin-agent"),
        StartTime=datetime.now(UTC) - timedelta(minutes=5),
    )["Events"]

    assert [(e["EventName"], e["Username"]) for e in events] == [
        ("DeleteRolePolicy", "erin@example.com"),
        ("CreateRole", "erin@example.com"),
    ]
    failed, created = (detail(e) for e in events)
    assert failed["errorCode"] == "NoSuchEntity"
    assert "errorCode" not in created
    assert created["requestParameters"] == {"roleName": "erin-agent"}
    assert failed["requestParameters"] == {"roleName": "erin-agent", "policyName": "never-written"}
    issuer = created["userIdentity"]["sessionContext"]["sessionIssuer"]
    assert issuer["arn"] == f"arn:aws:iam::{ml_dev}:role/OrganizationAccountAccessRole"
    assert created["recipientAccountId"] == ml_dev
