"""Seed the demo organisation through real boto3 calls against the sandbox's moto server.

The agents are dated `AGENT_AGE_DAYS` ago (moto would date them now), and their recorded use
makes Access Advisor show, over the last 90 days (`cloud.sandbox.aws.access_advisor` tracks s3,
iam, lambda, ec2, bedrock and sagemaker at action level):

| agent                 | not used                                   | unknown                  |
|-----------------------|--------------------------------------------|--------------------------|
| code-review-agent     | iam:* (its inline `iam:*` is never used)   | s3:GetObject             |
| data-pipeline-agent   | glue:*, 17 s3 management actions           | iam:PassRole, s3 objects |
| model-eval-agent      | sagemaker:CreateEndpoint, :DeleteEndpoint  | s3:GetObject             |
| notebook-helper-agent | bedrock:*, s3:* (idle INACTIVE_DAYS days)  |                          |
| invoice-reader-agent  | (textract is tracked per service only)     | both of its actions      |

The other agents use what they hold; their data-plane actions are unknown.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from cloud.aws.permissions import GRANT_ROLE_PERMISSIONS, READ_ROLE_PERMISSIONS
from cloud.base import IdentityKind
from cloud.sandbox.aws.account_ids import MANAGEMENT_ACCOUNT_ID, MEMBER_ACCOUNT_IDS
from cloud.sandbox.aws.activity import ActivityLog, ServiceUse, TrailEvent
from cloud.sandbox.aws.cross_account import ORGANIZATION_ACCESS_ROLE
from cloud.sandbox.aws.identity_dates import set_identity_dates
from cloud.sandbox.aws.seed_trail import record_agent_history, record_noise

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.type_defs import TagTypeDef

MANAGEMENT = "platform"
MEMBERS = tuple(MEMBER_ACCOUNT_IDS)  # ("ml-prod", "ml-dev"), each with its fixed id
READ_ROLE = "LeashReadOnly"
GRANT_ROLE = "LeashGrantManager"
AGENT_TAG = "leash:agent"
OWNER_TAG = "owner"
TEAM_TAG = "team"
INACTIVE_DAYS = 200
# Real agents' roles are older than any look-back window; moto would date them now.
AGENT_AGE_DAYS = 400


@dataclass(frozen=True, slots=True)
class SeededAccount:
    """One account of the demo organisation."""

    id: str
    name: str
    management: bool


@dataclass(frozen=True, slots=True)
class SeededIdentity:
    """One role or user the seed created, and what it is meant to show."""

    name: str
    account: SeededAccount
    kind: IdentityKind
    arn: str
    agent: bool
    owner: str | None = None
    team: str | None = None
    trusts: str | None = None
    over_broad: bool = False
    inactive: bool = False
    # What CloudTrail's last 90 days say (see `cloud.sandbox.aws.seed_trail`), rendered as
    # discovery renders principals.
    created_by: str | None = None
    granted_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DemoOrganization:
    """The seeded accounts and identities."""

    accounts: tuple[SeededAccount, ...]
    identities: tuple[SeededIdentity, ...]
    # The "now" its dates were stamped from: a restored copy of the seed is older than that.
    seeded_at: datetime

    def account(self, name: str) -> SeededAccount:
        """Return the account named `name`."""
        return next(account for account in self.accounts if account.name == name)

    def identity(self, name: str) -> SeededIdentity:
        """Return the identity named `name`."""
        return next(identity for identity in self.identities if identity.name == name)


@dataclass(frozen=True, slots=True)
class _Agent:
    name: str
    account: str
    trusts: str
    owner: str | None
    team: str
    allows: tuple[str, ...]
    # namespace -> (days since last use, actions used)
    used: Mapping[str, tuple[int, tuple[str, ...]]] = field(default_factory=dict)
    broad_inline: str | None = None
    broad_managed: str | None = None
    user: bool = False


AGENTS = (
    _Agent("support-triage-agent", MANAGEMENT, "bedrock.amazonaws.com", "owner-a", "support-bots",
           ("bedrock:InvokeModel", "s3:GetObject"),
           {"bedrock": (1, ("InvokeModel",)), "s3": (2, ("GetObject",))}),
    _Agent("ticket-router-agent", MANAGEMENT, "lambda.amazonaws.com", "owner-b", "support-bots",
           ("sqs:SendMessage", "dynamodb:PutItem"),
           {"sqs": (1, ("SendMessage",)), "dynamodb": (3, ("PutItem",))}),
    _Agent("knowledge-base-agent", MANAGEMENT, "bedrock.amazonaws.com", "owner-a", "support-bots",
           ("bedrock:Retrieve", "s3:GetObject", "s3:ListBucket"),
           {"bedrock": (1, ("Retrieve",)), "s3": (1, ("GetObject", "ListBucket"))}),
    _Agent("code-review-agent", MANAGEMENT, "lambda.amazonaws.com", "owner-b", "ml-platform",
           ("s3:GetObject",), {"s3": (2, ("GetObject",))}, broad_inline="iam:*"),
    _Agent("legacy-chat-agent", MANAGEMENT, "", "owner-b", "support-bots",
           ("bedrock:InvokeModel",), {"bedrock": (5, ("InvokeModel",))}, user=True),
    _Agent("invoice-reader-agent", "ml-prod", "bedrock.amazonaws.com", "owner-a", "ml-platform",
           ("s3:GetObject", "textract:AnalyzeDocument"),
           {"s3": (1, ("GetObject",)), "textract": (1, ("AnalyzeDocument",))}),
    _Agent("data-pipeline-agent", "ml-prod", "sagemaker.amazonaws.com", "owner-b", "ml-platform",
           ("glue:StartJobRun", "iam:PassRole"),
           {"s3": (1, ("GetObject", "PutObject", "GetBucketLocation"))}, broad_managed="s3:*"),
    _Agent("fraud-scoring-agent", "ml-prod", "sagemaker.amazonaws.com", "owner-a", "ml-platform",
           ("sagemaker:InvokeEndpoint", "dynamodb:GetItem"),
           {"sagemaker": (1, ("InvokeEndpoint",)), "dynamodb": (1, ("GetItem",))}),
    _Agent("forecast-agent", "ml-prod", "sagemaker.amazonaws.com", None, "ml-platform",
           ("s3:GetObject", "sagemaker:CreateTrainingJob"),
           {"sagemaker": (10, ("CreateTrainingJob",)), "s3": (10, ("GetObject",))}),
    _Agent("model-eval-agent", "ml-dev", "sagemaker.amazonaws.com", "owner-b", "ml-platform",
           ("sagemaker:CreateProcessingJob", "sagemaker:CreateEndpoint",
            "sagemaker:DeleteEndpoint", "s3:GetObject"),
           {"sagemaker": (2, ("CreateProcessingJob",)), "s3": (2, ("GetObject",))}),
    _Agent("notebook-helper-agent", "ml-dev", "bedrock.amazonaws.com", "owner-a", "ml-platform",
           ("bedrock:InvokeModel", "s3:GetObject"),
           {"bedrock": (INACTIVE_DAYS, ("InvokeModel",)), "s3": (INACTIVE_DAYS, ("GetObject",))}),
    _Agent("prompt-lab-agent", "ml-dev", "bedrock.amazonaws.com", "owner-b", "ml-platform",
           ("bedrock:InvokeModel",), {"bedrock": (1, ("InvokeModel",))}),
)  # fmt: skip


def seed_demo_organization(
    *, session: boto3.Session, endpoint_url: str, activity: ActivityLog, now: datetime | None = None
) -> DemoOrganization:
    """Create the organisation, its accounts, Leash's roles and the demo agents.

    The seed's own API calls are left out of CloudTrail; the history it records instead says
    which humans created and granted to the agents (`cloud.sandbox.aws.seed_trail`).
    """
    with activity.calls_unrecorded():
        return _seed(session, endpoint_url, activity, now or datetime.now(UTC))


def _seed(
    session: boto3.Session, endpoint_url: str, activity: ActivityLog, now: datetime
) -> DemoOrganization:
    config = Config(retries={"mode": "standard", "max_attempts": 1})
    organizations = session.client("organizations", endpoint_url=endpoint_url, config=config)
    sts = session.client("sts", endpoint_url=endpoint_url, config=config)
    organizations.create_organization(FeatureSet="ALL")
    management = SeededAccount(sts.get_caller_identity()["Account"], MANAGEMENT, True)
    _require_id(management, MANAGEMENT_ACCOUNT_ID)
    accounts = [management]
    iam_by_account = {MANAGEMENT: session.client("iam", endpoint_url=endpoint_url, config=config)}
    for name in MEMBERS:
        # moto completes CreateAccount at once; AWS would need DescribeCreateAccountStatus polling.
        status = organizations.create_account(Email=f"{name}@leash.example", AccountName=name)
        account = SeededAccount(status["CreateAccountStatus"]["AccountId"], name, False)
        _require_id(account, MEMBER_ACCOUNT_IDS[name])
        accounts.append(account)
        credentials = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account.id}:role/{ORGANIZATION_ACCESS_ROLE}",
            RoleSessionName="leash-sandbox-seed",
        )["Credentials"]
        iam_by_account[name] = session.client(
            "iam",
            endpoint_url=endpoint_url,
            config=config,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        _leash_roles(iam_by_account[name], management.id)
    by_name = {account.name: account for account in accounts}
    identities = [
        _agent(iam_by_account[agent.account], by_name[agent.account], agent, activity, now)
        for agent in AGENTS
    ]
    identities += _workloads(iam_by_account[MANAGEMENT], management)
    ids = {account.name: account.id for account in accounts}
    record_noise(activity, accounts=ids, grant_role=GRANT_ROLE, now=now)
    return DemoOrganization(accounts=tuple(accounts), identities=tuple(identities), seeded_at=now)


def _require_id(account: SeededAccount, expected: str) -> None:
    """The demo's accounts keep their ids from one start to the next (`account_ids`)."""
    if account.id != expected:
        raise RuntimeError(
            f"the sandbox's {account.name} account is {account.id}, not {expected}: "
            "seed through Sandbox.start (which pins the ids), on a sandbox holding no organisation"
        )


def _leash_roles(iam: IAMClient, management_account: str) -> None:
    trust = _trust({"AWS": f"arn:aws:iam::{management_account}:root"})
    for role, actions in ((READ_ROLE, READ_ROLE_PERMISSIONS), (GRANT_ROLE, GRANT_ROLE_PERMISSIONS)):
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust, Tags=[_tag("team", "leash")])
        iam.put_role_policy(RoleName=role, PolicyName="leash", PolicyDocument=_allow(actions))


@dataclass(frozen=True, slots=True)
class _Created:
    """An agent identity as created: its ARN and how CloudTrail names its calls."""

    arn: str
    principal: str
    username: str
    access_key: str


def _create(iam: IAMClient, account: SeededAccount, agent: _Agent) -> _Created:
    """Create the agent's user or role, tagged, with its `agent-access` inline policy."""
    tags = [_tag(AGENT_TAG, "true"), _tag(TEAM_TAG, agent.team)]
    if agent.owner:
        tags.append(_tag(OWNER_TAG, agent.owner))
    policy = _allow(agent.allows)
    if agent.user:
        arn = iam.create_user(UserName=agent.name, Tags=tags)["User"]["Arn"]
        iam.put_user_policy(UserName=agent.name, PolicyName="agent-access", PolicyDocument=policy)
        access_key = iam.create_access_key(UserName=agent.name)["AccessKey"]["AccessKeyId"]
        return _Created(arn, arn, agent.name, access_key)
    arn = iam.create_role(
        RoleName=agent.name,
        AssumeRolePolicyDocument=_trust({"Service": agent.trusts}),
        Description=f"AI agent {agent.name}",
        Tags=tags,
    )["Role"]["Arn"]
    iam.put_role_policy(RoleName=agent.name, PolicyName="agent-access", PolicyDocument=policy)
    principal = f"arn:aws:sts::{account.id}:assumed-role/{agent.name}/{agent.name}"
    return _Created(arn, principal, agent.name, "")


def _broaden(iam: IAMClient, agent: _Agent) -> str | None:
    """Give an over-broad agent its broad inline or managed policy; return that policy."""
    broad_policy = None
    if agent.broad_inline:
        broad_policy = "broad-access"
        iam.put_role_policy(
            RoleName=agent.name,
            PolicyName=broad_policy,
            PolicyDocument=_allow([agent.broad_inline]),
        )
    if agent.broad_managed:
        broad_policy = iam.create_policy(
            PolicyName=f"{agent.name}-full-access", PolicyDocument=_allow([agent.broad_managed])
        )["Policy"]["Arn"]
        iam.attach_role_policy(RoleName=agent.name, PolicyArn=broad_policy)
    return broad_policy


def _record_use(
    activity: ActivityLog, account: SeededAccount, agent: _Agent, created: _Created, now: datetime
) -> None:
    """Record what the agent used, for Access Advisor and as CloudTrail events."""
    for namespace, (days, actions) in agent.used.items():
        when = now - timedelta(days=days)
        activity.record_use(
            created.arn, ServiceUse(namespace, when, {f"{namespace}:{a}": when for a in actions})
        )
        for action in actions:
            activity.record_event(
                TrailEvent(
                    account=account.id,
                    principal_arn=created.principal,
                    username=created.username,
                    event_name=action,
                    event_source=f"{namespace}.amazonaws.com",
                    event_time=when,
                    read_only=action.startswith(("Get", "List", "Describe", "Invoke", "Retrieve")),
                    access_key_id=created.access_key,
                )
            )


def _agent(
    iam: IAMClient, account: SeededAccount, agent: _Agent, activity: ActivityLog, now: datetime
) -> SeededIdentity:
    created = _create(iam, account, agent)
    broad_policy = _broaden(iam, agent)
    history = record_agent_history(
        activity,
        account=account.id,
        name=agent.name,
        user=agent.user,
        broad_policy=broad_policy,
        now=now,
    )
    _record_use(activity, account, agent, created, now)
    kind = IdentityKind.USER if agent.user else IdentityKind.ROLE
    latest = min(agent.used.items(), key=lambda item: item[1][0])
    set_identity_dates(
        account.id,
        kind,
        agent.name,
        created_at=now - timedelta(days=AGENT_AGE_DAYS),
        last_used_at=now - timedelta(days=latest[1][0]),
        service=latest[0],
    )
    return SeededIdentity(
        name=agent.name,
        account=account,
        kind=kind,
        arn=created.arn,
        agent=True,
        owner=agent.owner,
        team=agent.team,
        trusts=agent.trusts or None,
        over_broad=bool(agent.broad_inline or agent.broad_managed),
        inactive=min(days for days, _ in agent.used.values()) > 120,
        created_by=history.created_by,
        granted_by=history.granted_by,
    )


def _workloads(iam: IAMClient, account: SeededAccount) -> list[SeededIdentity]:
    """Create the non-agent roles: a CI deploy role, an SSO role and a service-linked role."""
    github = f"arn:aws:iam::{account.id}:oidc-provider/token.actions.githubusercontent.com"
    ci = iam.create_role(
        RoleName="ci-deploy-role",
        AssumeRolePolicyDocument=_trust({"Federated": github}, "sts:AssumeRoleWithWebIdentity"),
        Tags=[_tag(TEAM_TAG, "platform")],
    )["Role"]
    iam.put_role_policy(
        RoleName="ci-deploy-role",
        PolicyName="deploy",
        PolicyDocument=_allow(["cloudformation:*", "s3:PutObject"]),
    )
    saml = f"arn:aws:iam::{account.id}:saml-provider/AWSSSO_abc_DO_NOT_DELETE"
    sso = iam.create_role(
        RoleName="AWSReservedSSO_Admin_abc",
        Path="/aws-reserved/sso.amazonaws.com/",
        AssumeRolePolicyDocument=_trust({"Federated": saml}, "sts:AssumeRoleWithSAML"),
    )["Role"]
    linked = iam.create_service_linked_role(AWSServiceName="autoscaling.amazonaws.com")["Role"]
    return [
        SeededIdentity(
            "ci-deploy-role", account, IdentityKind.ROLE, ci["Arn"], False, team="platform"
        ),
        SeededIdentity(sso["RoleName"], account, IdentityKind.ROLE, sso["Arn"], False),
        SeededIdentity(linked["RoleName"], account, IdentityKind.ROLE, linked["Arn"], False),
    ]


def _trust(principal: Mapping[str, str], action: str = "sts:AssumeRole") -> str:
    statement = {"Effect": "Allow", "Principal": dict(principal), "Action": action}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _allow(actions: Iterable[str]) -> str:
    statement = {"Effect": "Allow", "Action": list(actions), "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _tag(key: str, value: str) -> TagTypeDef:
    return {"Key": key, "Value": value}
