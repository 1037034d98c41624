"""One moto server for the session; each test that needs it gets a freshly seeded sandbox."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from cloud.aws import AwsProvider
from cloud.base import IdentityRef
from cloud.sandbox import Sandbox, SeededIdentity

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

IamIn = Callable[[str], "IAMClient"]
# LookupEvents calls per second per account: the sandbox does not throttle, so tests go fast.
FAST_LOOKUPS = 1000.0


@pytest.fixture(scope="session")
def sandbox_server(sandbox: Sandbox) -> Sandbox:
    """The suite's one sandbox (moto's state and patches are per process); tests reset it."""
    return sandbox


@pytest.fixture
def demo(sandbox_server: Sandbox) -> Sandbox:
    """Reset moto (`POST /moto-api/reset`) and seed the demo organisation."""
    sandbox_server.reset(seed=True)
    return sandbox_server


@pytest.fixture
def provider(demo: Sandbox) -> AwsProvider:
    """An AwsProvider pointed at the seeded sandbox, without retries."""
    return AwsProvider(
        session_factory=demo.session,
        endpoint_url=demo.endpoint_url,
        max_attempts=1,
        lookup_rate=FAST_LOOKUPS,
    )


@pytest.fixture
def iam_in(demo: Sandbox) -> IamIn:
    """Return a function giving an IAM client that acts in a given sandbox account."""

    session = demo.session()
    clients: dict[str, IAMClient] = {}

    def iam(account: str) -> IAMClient:
        if account in clients:
            return clients[account]
        if account == demo.accounts[0].id:
            clients[account] = session.client("iam", endpoint_url=demo.endpoint_url)
            return clients[account]
        sts = session.client("sts", endpoint_url=demo.endpoint_url)
        credentials = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
            RoleSessionName="leash-tests",
        )["Credentials"]
        clients[account] = session.client(
            "iam",
            endpoint_url=demo.endpoint_url,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        return clients[account]

    return iam


def ref(identity: SeededIdentity) -> IdentityRef:
    """Address a seeded identity the way discovery would."""
    return IdentityRef(
        provider="aws",
        account=identity.account.id,
        native_id=identity.arn,
        name=identity.name,
        kind=identity.kind,
    )


def as_dict(document: object) -> dict[str, Any]:
    """Narrow a policy document boto3 returned (botocore decodes it to a dict)."""
    assert isinstance(document, dict)
    return document


def role_policy(iam: IAMClient, role: str, policy: str) -> dict[str, Any]:
    """Read back one inline role policy document."""
    return as_dict(iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"])
