"""Roles and users of the enforcement tests' own in the shared sandbox, and how to read them back.

Each test creates identities with unique names in the seeded accounts, so the tests of a module
share one seed instead of re-seeding for every test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from cloud.aws import AwsProvider
from cloud.base import IdentityKind, IdentityRef
from cloud.sandbox import Sandbox
from tests.cloud.conftest import FAST_LOOKUPS

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "bedrock.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def seeded_world(sandbox: Sandbox) -> Iterator[World]:
    """Seed the sandbox once for a test module, and leave it freshly seeded afterwards."""
    sandbox.reset(seed=True)
    yield World(sandbox)
    sandbox.reset(seed=True)


@dataclass
class World:
    """The seeded sandbox, an AwsProvider on it, and IAM clients acting in each account."""

    sandbox: Sandbox
    _clients: dict[str, IAMClient] = field(default_factory=dict)

    @property
    def management(self) -> str:
        return self.sandbox.accounts[0].id

    @property
    def member(self) -> str:
        return self.sandbox.account("ml-prod").id

    def provider(self, session_factory: Callable[[], boto3.Session] | None = None) -> AwsProvider:
        """Return an AwsProvider on the sandbox (through `session_factory` when given)."""
        return AwsProvider(
            session_factory=session_factory or self.sandbox.session,
            endpoint_url=self.sandbox.endpoint_url,
            max_attempts=1,
            lookup_rate=FAST_LOOKUPS,
        )

    def failing_provider(self, operation: str, *, code: str = "LimitExceeded") -> AwsProvider:
        """Return an AwsProvider whose IAM `operation` calls are refused with error `code`."""

        def session() -> boto3.Session:
            base = self.sandbox.session()

            def refuse(**_: object) -> tuple[AWSResponse, dict[str, Any]]:
                error = {"Code": code, "Message": f"refused {operation} (test)"}
                meta = {"HTTPStatusCode": 409}
                return AWSResponse("http://sandbox", 409, HTTPHeaders(), None), {
                    "Error": error,
                    "ResponseMetadata": meta,
                }

            # botocore takes what a before-call handler returns as the response (its stubs
            # type handlers as returning None).
            handler = cast("Callable[..., None]", refuse)
            base.events.register(f"before-call.iam.{operation}", handler)
            return base

        return self.provider(session)

    def iam(self, account: str) -> IAMClient:
        """Return an IAM client acting in `account` (assuming the organisation role in members)."""
        if account in self._clients:
            return self._clients[account]
        session = self.sandbox.session()
        url = self.sandbox.endpoint_url
        if account == self.management:
            self._clients[account] = session.client("iam", endpoint_url=url)
            return self._clients[account]
        credentials = session.client("sts", endpoint_url=url).assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
            RoleSessionName="leash-tests",
        )["Credentials"]
        self._clients[account] = session.client(
            "iam",
            endpoint_url=url,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        return self._clients[account]

    def create(
        self,
        kind: IdentityKind,
        account: str,
        *,
        policies: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        managed: Sequence[str] = (),
        name: str | None = None,
    ) -> IdentityRef:
        """Create a uniquely named role or user with inline `policies`, `tags` and managed
        policies allowing each of `managed`."""
        iam = self.iam(account)
        name = name or f"agent-{uuid.uuid4().hex[:10]}"
        tag_list: Any = [{"Key": key, "Value": value} for key, value in (tags or {}).items()]
        if kind is IdentityKind.ROLE:
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST, Tags=tag_list)[
                "Role"
            ]["Arn"]
        else:
            arn = iam.create_user(UserName=name, Tags=tag_list)["User"]["Arn"]
        identity = IdentityRef("aws", account, arn, name, kind)
        for policy, document in (policies or {}).items():
            put_policy(iam, identity, policy, document)
        for action in managed:
            policy_arn = iam.create_policy(
                PolicyName=f"{name}-{action.replace(':', '-')}", PolicyDocument=allow([action])
            )["Policy"]["Arn"]
            if kind is IdentityKind.ROLE:
                iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
            else:
                iam.attach_user_policy(UserName=name, PolicyArn=policy_arn)
        return identity


def allow(actions: Sequence[str]) -> str:
    """Return a policy allowing `actions` on everything."""
    statement = {"Effect": "Allow", "Action": list(actions), "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def filler(size: int) -> str:
    """Return a compact policy document of exactly `size` characters."""

    def document(resource: str) -> str:
        statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": resource}
        return json.dumps(
            {"Version": "2012-10-17", "Statement": [statement]}, separators=(",", ":")
        )

    text = document("arn:aws:s3:::" + "b" * (size - len(document("arn:aws:s3:::"))))
    assert len(text) == size
    return text


def put_policy(iam: IAMClient, identity: IdentityRef, name: str, document: str) -> None:
    """Put an inline policy on a role or user."""
    if identity.kind is IdentityKind.ROLE:
        iam.put_role_policy(RoleName=identity.name, PolicyName=name, PolicyDocument=document)
    else:
        iam.put_user_policy(UserName=identity.name, PolicyName=name, PolicyDocument=document)


def inline_policies(iam: IAMClient, identity: IdentityRef) -> dict[str, Any]:
    """Return the identity's inline policy documents by name."""
    if identity.kind is IdentityKind.ROLE:
        names = iam.list_role_policies(RoleName=identity.name)["PolicyNames"]
        return {
            n: iam.get_role_policy(RoleName=identity.name, PolicyName=n)["PolicyDocument"]
            for n in names
        }
    names = iam.list_user_policies(UserName=identity.name)["PolicyNames"]
    return {
        n: iam.get_user_policy(UserName=identity.name, PolicyName=n)["PolicyDocument"]
        for n in names
    }


def attached(iam: IAMClient, identity: IdentityRef) -> list[str]:
    """Return the ARNs of the managed policies attached to the identity."""
    if identity.kind is IdentityKind.ROLE:
        found = iam.list_attached_role_policies(RoleName=identity.name)["AttachedPolicies"]
    else:
        found = iam.list_attached_user_policies(UserName=identity.name)["AttachedPolicies"]
    return [policy["PolicyArn"] for policy in found]


def managed_document(iam: IAMClient, arn: str) -> Any:
    """Return a managed policy's default document."""
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]


def tags(iam: IAMClient, identity: IdentityRef) -> dict[str, str]:
    """Return the identity's tags."""
    if identity.kind is IdentityKind.ROLE:
        found = iam.list_role_tags(RoleName=identity.name)["Tags"]
    else:
        found = iam.list_user_tags(UserName=identity.name)["Tags"]
    return {tag["Key"]: tag["Value"] for tag in found}


def state(iam: IAMClient, identity: IdentityRef) -> dict[str, Any]:
    """Read back everything that must be the same after an undo.

    GetRole / GetUser without RoleLastUsed, with its Tags sorted by key: IAM gives tags no
    order, and moto moves a re-tagged key to the end. Then the inline policies, the attached
    managed policies with their documents, and the tags.
    """
    if identity.kind is IdentityKind.ROLE:
        described: dict[str, Any] = dict(iam.get_role(RoleName=identity.name)["Role"])
        described.pop("RoleLastUsed", None)
    else:
        described = dict(iam.get_user(UserName=identity.name)["User"])
    described["Tags"] = sorted(described.get("Tags", []), key=lambda tag: tag["Key"])
    return {
        "identity": described,
        "inline": inline_policies(iam, identity),
        "attached": {arn: managed_document(iam, arn) for arn in attached(iam, identity)},
        "tags": tags(iam, identity),
    }


def leash_policies(iam: IAMClient, identity: IdentityRef) -> list[str]:
    """List the customer-managed policies under Leash's path named for the identity."""
    found = iam.list_policies(Scope="Local", PathPrefix="/leash/")["Policies"]
    return sorted(p["Arn"] for p in found if p["PolicyName"].endswith(f"-{identity.name}"))


SESSIONS_POLICY_NAME = "leash-revoked-sessions"


def sessions_policy(at_text: str) -> dict[str, Any]:
    """The deny of sessions issued before a quarantine that a release leaves in place."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LeashRevokeOlderSessions",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": at_text}},
            }
        ],
    }


def released(before: dict[str, Any], at_text: str) -> dict[str, Any]:
    """The state a release must leave: as before, plus the lasting old-sessions deny inline."""
    return before | {"inline": before["inline"] | {SESSIONS_POLICY_NAME: sessions_policy(at_text)}}
