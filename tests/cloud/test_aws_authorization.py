"""What the agent itself can still do after Leash's enforcement, as moto's IAM authorisation says.

moto authorises a call from a user's own access keys by evaluating that user's identity policies,
an explicit Deny winning. Switching this on (`POST /moto-api/reset-auth` with body `0`) is global
to the moto process, so these tests run their own moto server in a subprocess instead of the
shared sandbox. moto ignores policy conditions (a conditional Deny denies always), so what
these tests show is that each deny reaches the agent's own calls; the exemption's time
condition (`DateGreaterThan aws:CurrentTime`) and the session cut-off
(`DateLessThan aws:TokenIssueTime`) are asserted on the documents in test_aws_guardrail.py and
test_aws_quarantine.py instead. moto always allows `sts:GetCallerIdentity` (as AWS does).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from cloud.aws import AwsProvider
from cloud.base import IdentityKind, IdentityRef

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
CONFIG = Config(region_name=REGION, retries={"mode": "standard", "total_max_attempts": 1})
AGENT_ACTIONS = [
    "iam:ListRoles",
    "iam:ListUsers",
    "iam:PutUserPolicy",
    "iam:CreateAccessKey",
    "s3:ListAllMyBuckets",
    "sqs:ListQueues",
]
GUARDED = ["iam:CreateAccessKey", "iam:PassRole", "iam:PutUserPolicy"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def allow(actions: list[str]) -> str:
    statement = {"Effect": "Allow", "Action": actions, "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def keyed_session(iam: IAMClient, user: str) -> boto3.Session:
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return boto3.Session(
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        region_name=REGION,
    )


def post(url: str, body: bytes) -> None:
    # moto reads the raw body: a form content type would leave it empty.
    request = urllib.request.Request(  # noqa: S310 - our own loopback server
        url, data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()


def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):  # noqa: S310
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.05)
    raise RuntimeError("moto server did not start within 30 s")


@dataclass(frozen=True)
class AuthorizingMoto:
    """A moto server checking IAM authorisation, and Leash's own administrator keys on it."""

    url: str
    leash: boto3.Session

    def iam(self) -> IAMClient:
        return self.leash.client("iam", endpoint_url=self.url, config=CONFIG)

    def provider(self) -> AwsProvider:
        return AwsProvider(
            session_factory=lambda: self.leash,
            endpoint_url=self.url,
            accounts=[ACCOUNT],
            use_organizations=False,
            trace_provenance=False,
            max_attempts=1,
        )


@pytest.fixture(scope="module")
def moto_with_auth() -> Iterator[AuthorizingMoto]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(  # noqa: S603 - this interpreter running moto
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(url, process)
        # While authorisation is still off: Leash's administrator user and its keys.
        bootstrap = boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        ).client("iam", endpoint_url=url, config=CONFIG)
        bootstrap.create_user(UserName="leash")
        bootstrap.put_user_policy(UserName="leash", PolicyName="admin", PolicyDocument=allow(["*"]))
        leash = keyed_session(bootstrap, "leash")
        post(f"{url}/moto-api/reset-auth", b"0")  # authorise every request from now on
        yield AuthorizingMoto(url, leash)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Agent:
    """An agent IAM user with its own keys, and a scratch user it may write policies on."""

    ref: IdentityRef
    session: boto3.Session
    scratch: str
    url: str

    def allowed(self, call: Callable[[], object]) -> bool:
        """Run one of the agent's own calls; False when moto refuses it as not authorised."""
        try:
            call()
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 403 or error.response["Error"]["Code"].startswith("AccessDenied"):
                return False
            raise
        return True

    def can_list_roles(self) -> bool:
        return self.allowed(self.session.client("iam", endpoint_url=self.url).list_roles)

    def can_list_users(self) -> bool:
        return self.allowed(self.session.client("iam", endpoint_url=self.url).list_users)

    def can_put_policy(self) -> bool:
        iam = self.session.client("iam", endpoint_url=self.url)
        return self.allowed(
            lambda: iam.put_user_policy(
                UserName=self.scratch, PolicyName="x", PolicyDocument=allow(["s3:GetObject"])
            )
        )

    def can_list_buckets(self) -> bool:
        return self.allowed(self.session.client("s3", endpoint_url=self.url).list_buckets)

    def can_list_queues(self) -> bool:
        return self.allowed(self.session.client("sqs", endpoint_url=self.url).list_queues)


@pytest.fixture
def agent(moto_with_auth: AuthorizingMoto) -> Agent:
    iam = moto_with_auth.iam()
    name = f"agent-{uuid.uuid4().hex[:8]}"
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    iam.put_user_policy(
        UserName=name, PolicyName="agent-access", PolicyDocument=allow(AGENT_ACTIONS)
    )
    scratch = f"scratch-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=scratch)
    ref = IdentityRef("aws", ACCOUNT, arn, name, IdentityKind.USER)
    return Agent(ref, keyed_session(iam, name), scratch, moto_with_auth.url)


async def test_the_guardrail_denies_a_privileged_action_the_agent_was_allowed(
    moto_with_auth: AuthorizingMoto, agent: Agent
) -> None:
    assert agent.can_put_policy()

    await moto_with_auth.provider().guardrail(agent.ref, GUARDED)

    assert not agent.can_put_policy()
    create_key = agent.session.client("iam", endpoint_url=agent.url).create_access_key
    assert not agent.allowed(lambda: create_key(UserName=agent.scratch))
    assert agent.can_list_roles()
    assert agent.can_list_buckets()


async def test_a_quarantined_agent_is_denied_everything_until_released(
    moto_with_auth: AuthorizingMoto, agent: Agent
) -> None:
    provider = moto_with_auth.provider()
    checks = [
        agent.can_list_roles,
        agent.can_put_policy,
        agent.can_list_buckets,
        agent.can_list_queues,
    ]
    assert all(check() for check in checks)

    snapshot = await provider.quarantine(agent.ref, at=datetime.now(UTC), reason="test")

    assert not any(check() for check in checks)
    assert await provider.release(agent.ref, snapshot) is True
    # The deny of sessions issued before the quarantine stays. This agent signs with an IAM
    # user's long-term keys, which carry no aws:TokenIssueTime, so on AWS that deny does not
    # apply to them; moto ignores conditions and applies it to every call. Everything else the
    # quarantine wrote is gone:
    iam = moto_with_auth.iam()
    lasting = iam.list_user_policies(UserName=agent.ref.name)["PolicyNames"]
    assert "leash-revoked-sessions" in lasting
    assert "leash-quarantine" not in lasting
    iam.delete_user_policy(UserName=agent.ref.name, PolicyName="leash-revoked-sessions")
    assert all(check() for check in checks)


async def test_a_restricted_action_is_denied_until_unrestricted(
    moto_with_auth: AuthorizingMoto, agent: Agent
) -> None:
    provider = moto_with_auth.provider()
    assert agent.can_list_users()
    assert agent.can_list_queues()
    kept = [a for a in AGENT_ACTIONS if a not in ("iam:ListUsers", "sqs:ListQueues")]

    plan = await provider.plan_restrict(agent.ref, ["iam:ListUsers", "sqs:ListQueues"], kept)
    snapshot = await provider.restrict(agent.ref, plan)

    assert not agent.can_list_users()
    assert not agent.can_list_queues()
    assert agent.can_list_roles()
    assert agent.can_list_buckets()
    assert await provider.unrestrict(agent.ref, snapshot) is True
    assert agent.can_list_users()
    assert agent.can_list_queues()
