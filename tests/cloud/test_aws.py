"""AwsProvider against the moto sandbox, read back with real boto3."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from cloud.aws import AwsProvider
from cloud.aws.errors import translate
from cloud.base import (
    CloudAccessDeniedError,
    CloudConfigurationError,
    CloudError,
    CloudLimitError,
    CloudNotFoundError,
    CloudProvider,
    CloudThrottledError,
    CloudUnavailableError,
    GrantSpec,
    IdentityKind,
    IdentityRef,
)
from cloud.sandbox import Sandbox
from tests.cloud.conftest import IamIn, as_dict, ref, role_policy
from tests.cloud.provider_registry import load_provider_class

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

EXPIRY = datetime(2030, 1, 1, 4, 0, tzinfo=timezone(timedelta(hours=1)))
EXPIRY_TEXT = "2030-01-01T03:00:00Z"
TIME_LIMIT = {"DateLessThan": {"aws:CurrentTime": EXPIRY_TEXT}}


def spec(
    grant_id: str,
    *,
    actions: tuple[str, ...] = ("s3:GetObject", "s3:PutObject"),
    resources: tuple[str, ...] = ("arn:aws:s3:::reports/*",),
    expires_at: datetime = EXPIRY,
    deny_actions: tuple[str, ...] = (),
) -> GrantSpec:
    return GrantSpec(grant_id, actions, resources, expires_at, deny_actions)


def missing_role(sandbox: Sandbox, name: str = "no-such-agent") -> IdentityRef:
    account = sandbox.accounts[0].id
    return IdentityRef(
        "aws", account, f"arn:aws:iam::{account}:role/{name}", name, IdentityKind.ROLE
    )


async def test_provider_is_registered_and_meets_the_contract(provider: AwsProvider) -> None:
    assert load_provider_class("aws") is AwsProvider
    assert isinstance(provider, CloudProvider)
    assert provider.name == "aws"
    with pytest.raises(CloudConfigurationError, match="unknown cloud provider 'oracle'"):
        load_provider_class("oracle")


async def test_grant_writes_exact_self_expiring_policy(
    demo: Sandbox, provider: AwsProvider, iam_in: IamIn
) -> None:
    agent = demo.identity("support-triage-agent")

    applied = await provider.grant(ref(agent), spec("g1"))

    assert applied.artefact == "leash-grant-g1"
    assert applied.mechanism == "aws-inline-policy-with-DateLessThan"
    stored = role_policy(iam_in(agent.account.id), agent.name, "leash-grant-g1")
    assert stored == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LeashGrant",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": ["arn:aws:s3:::reports/*"],
                "Condition": TIME_LIMIT,
            }
        ],
    }


@pytest.mark.parametrize(
    ("deny_actions", "expected_sids"),
    [
        pytest.param((), ["LeashGrant"], id="no-deny"),
        pytest.param(
            ("iam:CreateAccessKey", "iam:PassRole"),
            ["LeashGrant", "LeashDenyPersistence"],
            id="deny",
        ),
    ],
)
async def test_deny_statement_present_only_with_deny_actions_in_a_member_account(
    demo: Sandbox,
    provider: AwsProvider,
    iam_in: IamIn,
    deny_actions: tuple[str, ...],
    expected_sids: list[str],
) -> None:
    agent = demo.identity("invoice-reader-agent")
    assert not agent.account.management

    await provider.grant(ref(agent), spec("g2", resources=(), deny_actions=deny_actions))

    statements = role_policy(iam_in(agent.account.id), agent.name, "leash-grant-g2")["Statement"]
    assert [s["Sid"] for s in statements] == expected_sids
    assert statements[0]["Resource"] == "*"
    if deny_actions:
        assert statements[1] == {
            "Sid": "LeashDenyPersistence",
            "Effect": "Deny",
            "Action": list(deny_actions),
            "Resource": "*",
            "Condition": TIME_LIMIT,
        }


async def test_grant_and_revoke_on_a_user(
    demo: Sandbox, provider: AwsProvider, iam_in: IamIn
) -> None:
    user = demo.identity("legacy-chat-agent")
    assert user.kind is IdentityKind.USER
    iam = iam_in(user.account.id)

    await provider.grant(ref(user), spec("u1", actions=("bedrock:InvokeModel",)))

    document = as_dict(
        iam.get_user_policy(UserName=user.name, PolicyName="leash-grant-u1")["PolicyDocument"]
    )
    assert document["Statement"][0]["Action"] == ["bedrock:InvokeModel"]
    assert [a.grant_id for a in await provider.grant_artefacts(ref(user))] == ["u1"]
    assert await provider.revoke(ref(user), "u1") is True
    assert "leash-grant-u1" not in iam.list_user_policies(UserName=user.name)["PolicyNames"]


async def test_regrant_with_the_same_id_overwrites(
    demo: Sandbox, provider: AwsProvider, iam_in: IamIn
) -> None:
    agent = demo.identity("code-review-agent")

    await provider.grant(ref(agent), spec("g3"))
    await provider.grant(ref(agent), spec("g3", actions=("s3:ListBucket",)))

    iam = iam_in(agent.account.id)
    names = iam.list_role_policies(RoleName=agent.name)["PolicyNames"]
    assert [n for n in names if n.startswith("leash-grant-")] == ["leash-grant-g3"]
    document = role_policy(iam, agent.name, "leash-grant-g3")
    assert document["Statement"][0]["Action"] == ["s3:ListBucket"]


async def test_revoke_deletes_then_reports_already_gone(
    demo: Sandbox, provider: AwsProvider, iam_in: IamIn
) -> None:
    agent = demo.identity("fraud-scoring-agent")
    await provider.grant(ref(agent), spec("g4"))

    assert await provider.revoke(ref(agent), "g4") is True
    assert await provider.revoke(ref(agent), "g4") is False
    names = iam_in(agent.account.id).list_role_policies(RoleName=agent.name)["PolicyNames"]
    assert names == ["agent-access"]


async def test_revoke_on_a_missing_identity_is_already_gone(
    demo: Sandbox, provider: AwsProvider
) -> None:
    assert await provider.revoke(missing_role(demo), "g5") is False


async def test_grant_on_a_missing_role_is_not_found(demo: Sandbox, provider: AwsProvider) -> None:
    with pytest.raises(CloudNotFoundError, match="no-such-agent") as caught:
        await provider.grant(missing_role(demo), spec("g6"))
    assert caught.value.code == "NoSuchEntity"


async def test_grant_into_an_account_without_the_grant_role_is_access_denied(
    provider: AwsProvider,
) -> None:
    stranger = IdentityRef(
        "aws", "999999999999", "arn:aws:iam::999999999999:role/x", "x", IdentityKind.ROLE
    )
    with pytest.raises(CloudAccessDeniedError, match=r"AssumeRole.*LeashGrantManager"):
        await provider.grant(stranger, spec("g7"))


def filler_policy(size: int) -> str:
    """Return a compact policy document of exactly `size` characters."""

    def document(resource: str) -> str:
        statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": resource}
        return json.dumps(
            {"Version": "2012-10-17", "Statement": [statement]}, separators=(",", ":")
        )

    text = document("arn:aws:s3:::" + "b" * (size - len(document("arn:aws:s3:::"))))
    assert len(text) == size
    return text


def compact_size(iam: IAMClient, role: str, policy: str) -> int:
    return len(json.dumps(role_policy(iam, role, policy), separators=(",", ":")))


async def test_budget_check_refuses_and_writes_nothing(
    demo: Sandbox, provider: AwsProvider, iam_in: IamIn
) -> None:
    agent = demo.identity("prompt-lab-agent")
    iam = iam_in(agent.account.id)
    iam.put_role_policy(RoleName=agent.name, PolicyName="big", PolicyDocument=filler_policy(10_000))

    with pytest.raises(CloudLimitError) as caught:
        await provider.grant(ref(agent), spec("g8"))

    message = str(caught.value)
    assert "prompt-lab-agent" in message
    assert "10240" in message
    assert "g8" in message
    assert sorted(iam.list_role_policies(RoleName=agent.name)["PolicyNames"]) == [
        "agent-access",
        "big",
    ]


async def test_budget_does_not_count_the_grant_being_replaced(
    demo: Sandbox, provider: AwsProvider, iam_in: IamIn
) -> None:
    agent = demo.identity("model-eval-agent")
    iam = iam_in(agent.account.id)
    await provider.grant(ref(agent), spec("g9"))
    names = iam.list_role_policies(RoleName=agent.name)["PolicyNames"]
    used = sum(compact_size(iam, agent.name, name) for name in names)
    grant_size = compact_size(iam, agent.name, "leash-grant-g9")
    # Room for the grant once, not twice.
    iam.put_role_policy(
        RoleName=agent.name, PolicyName="big", PolicyDocument=filler_policy(10_240 - used)
    )

    await provider.grant(ref(agent), spec("g9"))

    with pytest.raises(CloudLimitError, match=f"to {10_240 + grant_size} characters"):
        await provider.grant(ref(agent), spec("g10"))


async def test_grant_artefacts_lists_only_leash_grants(
    demo: Sandbox, provider: AwsProvider
) -> None:
    agent = demo.identity("data-pipeline-agent")
    await provider.grant(ref(agent), spec("b"))
    await provider.grant(ref(agent), spec("a"))

    artefacts = await provider.grant_artefacts(ref(agent))

    assert sorted((a.grant_id, a.artefact) for a in artefacts) == [
        ("a", "leash-grant-a"),
        ("b", "leash-grant-b"),
    ]
    assert all(a.identity == ref(agent) for a in artefacts)


async def test_grant_artefacts_of_a_missing_role_is_not_found(
    demo: Sandbox, provider: AwsProvider
) -> None:
    with pytest.raises(CloudNotFoundError, match="ListRolePolicies"):
        await provider.grant_artefacts(missing_role(demo))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_unreachable_endpoint_is_unavailable() -> None:
    provider = AwsProvider(
        session_factory=lambda: boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        ),
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        max_attempts=1,
    )
    identity = IdentityRef("aws", "123456789012", "arn", "some-agent", IdentityKind.ROLE)

    with pytest.raises(CloudUnavailableError, match="GetCallerIdentity") as caught:
        await provider.grant(identity, spec("g11"))
    assert caught.value.retryable


def client_error(code: str, status: int, message: str = "boom") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "PutRolePolicy")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(client_error("AccessDenied", 403), CloudAccessDeniedError, id="access-denied"),
        pytest.param(
            client_error("AccessDeniedException", 400),
            CloudAccessDeniedError,
            id="access-denied-exception",
        ),
        pytest.param(client_error("NoSuchEntity", 404), CloudNotFoundError, id="no-such-entity"),
        pytest.param(client_error("Throttling", 400), CloudThrottledError, id="throttling"),
        pytest.param(
            client_error("ThrottlingException", 400), CloudThrottledError, id="throttling-exception"
        ),
        pytest.param(
            client_error("TooManyRequestsException", 429),
            CloudThrottledError,
            id="too-many-requests",
        ),
        pytest.param(
            client_error("RequestLimitExceeded", 503), CloudThrottledError, id="request-limit"
        ),
        pytest.param(client_error("LimitExceeded", 409), CloudLimitError, id="limit-exceeded"),
        pytest.param(
            client_error(
                "MalformedPolicyDocument", 400, "Maximum policy size of 10240 bytes exceeded"
            ),
            CloudLimitError,
            id="malformed-size",
        ),
        pytest.param(
            client_error("MalformedPolicyDocument", 400, "Syntax errors in policy"),
            CloudError,
            id="malformed-syntax",
        ),
        pytest.param(client_error("ServiceFailure", 500), CloudUnavailableError, id="server-error"),
        pytest.param(
            EndpointConnectionError(endpoint_url="http://x"), CloudUnavailableError, id="connection"
        ),
        pytest.param(
            ReadTimeoutError(endpoint_url="http://x"), CloudUnavailableError, id="read-timeout"
        ),
        pytest.param(client_error("InvalidInput", 400), CloudError, id="other"),
    ],
)
def test_botocore_errors_become_cloud_errors(error: Exception, expected: type[CloudError]) -> None:
    translated = translate(error, operation="PutRolePolicy", target="role a in account 1")

    assert type(translated) is expected
    assert "PutRolePolicy" in str(translated)
    assert "role a in account 1" in str(translated)


async def test_grant_refuses_a_naive_expiry_and_empty_actions(
    demo: Sandbox, provider: AwsProvider
) -> None:
    agent = ref(demo.identity("prompt-lab-agent"))
    with pytest.raises(CloudError, match="timezone-aware"):
        await provider.grant(agent, spec("g12", expires_at=datetime(2030, 1, 1)))
    with pytest.raises(CloudError, match="names no actions"):
        await provider.grant(agent, spec("g13", actions=()))
    assert await provider.grant_artefacts(agent) == ()
