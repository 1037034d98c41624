"""AwsProvider discovery across the sandbox's organisation, read back with real boto3."""

from __future__ import annotations

import json

from cloud.aws import AwsProvider
from cloud.base import IdentityKind
from cloud.sandbox import Sandbox
from tests.cloud.conftest import FAST_LOOKUPS, IamIn

TRUST_LAMBDA = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


EXPECTED_BY_ACCOUNT = {
    "platform": {
        "support-triage-agent",
        "ticket-router-agent",
        "knowledge-base-agent",
        "code-review-agent",
        "ci-deploy-role",
        "legacy-chat-agent",
    },
    "ml-prod": {
        "invoice-reader-agent",
        "data-pipeline-agent",
        "fraud-scoring-agent",
        "forecast-agent",
        "OrganizationAccountAccessRole",
    },
    "ml-dev": {
        "model-eval-agent",
        "notebook-helper-agent",
        "prompt-lab-agent",
        "OrganizationAccountAccessRole",
    },
}


async def test_discovery_reads_every_account_of_the_organization(
    demo: Sandbox, provider: AwsProvider
) -> None:
    result = await provider.discover()

    assert result.failures == {}
    by_account = {
        account.name: {i.ref.name for i in result.identities if i.ref.account == account.id}
        for account in demo.accounts
    }
    assert by_account == EXPECTED_BY_ACCOUNT
    found = {i.ref.name: i for i in result.identities}
    triage = found["support-triage-agent"]
    assert dict(triage.tags) == {"leash:agent": "true", "owner": "owner-a", "team": "support-bots"}
    assert triage.trust_principals == ("bedrock.amazonaws.com",)
    assert triage.ref.native_id == demo.identity("support-triage-agent").arn
    assert triage.created_at is not None
    assert found["data-pipeline-agent"].trust_principals == ("sagemaker.amazonaws.com",)
    assert "owner" not in found["forecast-agent"].tags
    assert found["legacy-chat-agent"].ref.kind is IdentityKind.USER
    # Leash's own roles are never inventoried, so nothing can be granted to them.
    assert "LeashReadOnly" not in found
    assert "LeashGrantManager" not in found


async def test_discovery_can_include_sso_and_service_linked_roles(demo: Sandbox) -> None:
    provider = AwsProvider(
        session_factory=demo.session,
        endpoint_url=demo.endpoint_url,
        include_sso=True,
        include_service_linked=True,
        max_attempts=1,
        lookup_rate=FAST_LOOKUPS,
    )
    names = {i.ref.name for i in (await provider.discover()).identities}

    assert "AWSReservedSSO_Admin_abc" in names
    assert "AWSServiceRoleForAutoScaling" in names


async def test_a_failing_account_is_reported_without_losing_the_others(
    demo: Sandbox, provider: AwsProvider, iam_in: IamIn
) -> None:
    ml_dev = demo.account("ml-dev")
    iam = iam_in(ml_dev.id)
    iam.delete_role_policy(RoleName="LeashReadOnly", PolicyName="leash")
    iam.delete_role(RoleName="LeashReadOnly")

    result = await provider.discover()

    assert set(result.failures) == {ml_dev.id}
    assert isinstance(result.failures[ml_dev.id], str)
    assert f"arn:aws:iam::{ml_dev.id}:role/LeashReadOnly" in result.failures[ml_dev.id]
    assert "AccessDenied" in result.failures[ml_dev.id]
    accounts = {i.ref.account for i in result.identities}
    assert accounts == {a.id for a in demo.accounts if a.name != "ml-dev"}


async def test_without_an_organization_the_home_account_is_scanned(demo: Sandbox) -> None:
    demo.reset(seed=False)
    iam = demo.session().client("iam", endpoint_url=demo.endpoint_url)
    iam.create_role(RoleName="lonely-agent", AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))
    provider = AwsProvider(
        session_factory=demo.session,
        endpoint_url=demo.endpoint_url,
        max_attempts=1,
        lookup_rate=FAST_LOOKUPS,
    )

    result = await provider.discover()

    assert [(i.ref.account, i.ref.name) for i in result.identities] == [
        ("123456789012", "lonely-agent")
    ]
    assert result.identities[0].trust_principals == ("lambda.amazonaws.com",)
    assert "no active accounts" in result.failures["organizations"]


async def test_configured_accounts_without_organizations(demo: Sandbox) -> None:
    provider = AwsProvider(
        session_factory=demo.session,
        endpoint_url=demo.endpoint_url,
        use_organizations=False,
        accounts=(demo.accounts[1].id, "999999999999"),
        max_attempts=1,
        lookup_rate=FAST_LOOKUPS,
    )

    result = await provider.discover()

    assert set(result.failures) == {"999999999999"}
    assert {i.ref.account for i in result.identities} == {demo.accounts[1].id}
    assert {i.ref.name for i in result.identities} == EXPECTED_BY_ACCOUNT["ml-prod"]


async def test_required_permissions_cover_what_the_provider_calls(provider: AwsProvider) -> None:
    needed = set(provider.required_permissions())

    assert {
        "organizations:ListAccounts",
        "sts:AssumeRole",
        "iam:GetAccountAuthorizationDetails",
        "iam:GetRole",
        "iam:PutRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:PutUserPolicy",
        "iam:ListRolePolicies",
        "iam:GetRolePolicy",
    } <= needed
    alone = AwsProvider(use_organizations=False)
    assert "organizations:ListAccounts" not in alone.required_permissions()


async def test_discovery_reads_an_account_in_a_few_calls_not_four_per_role(
    demo: Sandbox, provider: AwsProvider
) -> None:
    """Roles' tags, trust, last use and policies come from GetAccountAuthorizationDetails."""
    demo.moto.clear_calls()
    result = await provider.discover()
    calls = [c for c in demo.moto.calls() if c.by_leash and c.service == "iam"]
    per_role = {"GetRole", "ListRoles", "ListRolePolicies", "ListAttachedRolePolicies"}
    assert [c.operation for c in calls if c.operation in per_role] == []
    details = [c for c in calls if c.operation == "GetAccountAuthorizationDetails"]
    assert len(details) == len(demo.accounts)
    found = {i.ref.name: i for i in result.identities}
    assert found["support-triage-agent"].inline_policies == ("agent-access",)
    assert found["support-triage-agent"].tags["owner"] == "owner-a"
    assert found["support-triage-agent"].last_used_at is not None
