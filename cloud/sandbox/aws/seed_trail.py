"""The CloudTrail history the seed writes: who created each demo agent and who granted to it.

Humans act through an IAM Identity Center (SSO) session or as an IAM user:

| agent                 | account  | created by (days ago) | granted by                      |
|-----------------------|----------|-----------------------|---------------------------------|
| most agents           | any      | alice (SSO Admin)     | alice                           |
| legacy-chat-agent     | platform | bob (IAM user)        | bob                             |
| code-review-agent     | platform | alice                 | alice, then bob (`iam:*`)       |
| data-pipeline-agent   | ml-prod  | alice                 | alice, then carol (`s3:*`)      |
| model-eval-agent      | ml-dev   | carol (SSO PowerUser) | carol                           |
| forecast-agent        | ml-prod  | unknown: 120 days ago, past CloudTrail's 90 | none      |

Noise that must not be attributed: IAM Identity Center (an AWS service) creating the SSO role,
a call CloudFormation made for carol on prompt-lab-agent (`invokedBy`), mallory's denied
AttachRolePolicy on fraud-scoring-agent, and a past Leash grant on notebook-helper-agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cloud.base import Provenance
from cloud.sandbox.aws.activity import ActivityLog, TrailEvent

SSO_ADMIN = "AWSReservedSSO_Admin_abc"
SSO_POWER_USER = "AWSReservedSSO_PowerUser_def"
SSO_READ_ONLY = "AWSReservedSSO_ReadOnly_ghi"
IAM = "iam.amazonaws.com"
_ROLE_EVENTS = {"create": "CreateRole", "put": "PutRolePolicy", "attach": "AttachRolePolicy"}
_USER_EVENTS = {"create": "CreateUser", "put": "PutUserPolicy", "attach": "AttachUserPolicy"}


@dataclass(frozen=True, slots=True)
class Human:
    """A person acting in AWS: through an SSO role session, or as an IAM user."""

    name: str
    sso_role: str | None = None

    def arn(self, account: str) -> str:
        if self.sso_role:
            return f"arn:aws:sts::{account}:assumed-role/{self.sso_role}/{self.name}"
        return f"arn:aws:iam::{account}:user/{self.name}"

    def rendered(self, account: str) -> str:
        """Return the principal as `cloud.aws.provenance.render` names it."""
        if self.sso_role:
            return f"{self.name} (via {self.sso_role})"
        return self.arn(account)


ALICE = Human("alice@example.com", SSO_ADMIN)
BOB = Human("bob")  # an IAM user of the management account (since deleted: CloudTrail remembers)
CAROL = Human("carol@example.com", SSO_POWER_USER)
MALLORY = Human("mallory@example.com", SSO_READ_ONLY)
CREATED_DAYS_AGO = 60
UNKNOWN_CREATOR_DAYS_AGO = 120
# agent -> (creator, days ago); every other agent was created by alice CREATED_DAYS_AGO.
CREATORS: dict[str, tuple[Human, int]] = {
    "legacy-chat-agent": (BOB, 80),
    "model-eval-agent": (CAROL, 30),
    "forecast-agent": (ALICE, UNKNOWN_CREATOR_DAYS_AGO),
}
BROAD_GRANTERS = {"code-review-agent": BOB, "data-pipeline-agent": CAROL}
BROAD_GRANT_DAYS_AGO = 20


def record_agent_history(
    activity: ActivityLog,
    *,
    account: str,
    name: str,
    user: bool,
    broad_policy: str | None,
    now: datetime,
) -> Provenance:
    """Record who created the agent and granted to it; return what LookupEvents can tell.

    `broad_policy` is the over-broad inline policy name, or the managed policy ARN attached.
    """
    creator, days = CREATORS.get(name, (ALICE, CREATED_DAYS_AGO))
    events = _USER_EVENTS if user else _ROLE_EVENTS
    target = {"userName" if user else "roleName": name}
    created = now - timedelta(days=days)
    _record(activity, account, creator, events["create"], target, created)
    access = {**target, "policyName": "agent-access"}
    _record(activity, account, creator, events["put"], access, created + timedelta(minutes=1))
    granters = [creator]
    broad_granter = BROAD_GRANTERS.get(name)
    if broad_policy and broad_granter:
        is_arn = broad_policy.startswith("arn:")
        parameters = {**target, ("policyArn" if is_arn else "policyName"): broad_policy}
        event = events["attach" if is_arn else "put"]
        _record(
            activity,
            account,
            broad_granter,
            event,
            parameters,
            now - timedelta(days=BROAD_GRANT_DAYS_AGO),
        )
        granters.append(broad_granter)
    if days > 90:  # past LookupEvents' reach
        return Provenance(None, ())
    rendered = (human.rendered(account) for human in granters)
    return Provenance(creator.rendered(account), tuple(dict.fromkeys(rendered)))


def record_noise(
    activity: ActivityLog, *, accounts: dict[str, str], grant_role: str, now: datetime
) -> None:
    """Record the events discovery must not attribute to anyone (see the module docstring)."""
    platform, ml_prod, ml_dev = accounts["platform"], accounts["ml-prod"], accounts["ml-dev"]
    activity.record_event(
        TrailEvent(
            account=platform,
            principal_arn="",
            invoked_by="sso.amazonaws.com",
            username="sso.amazonaws.com",
            event_name="CreateRole",
            event_source=IAM,
            event_time=now - timedelta(days=85),
            resources=(("AWS::IAM::Role", SSO_ADMIN),),
            read_only=False,
            request_parameters={"roleName": SSO_ADMIN, "path": "/aws-reserved/sso.amazonaws.com/"},
        )
    )
    stack = {"roleName": "prompt-lab-agent", "policyName": "stack-access"}
    _record(activity, ml_dev, CAROL, "PutRolePolicy", stack, now - timedelta(days=10),
            invoked_by="cloudformation.amazonaws.com")  # fmt: skip
    denied = {
        "roleName": "fraud-scoring-agent",
        "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
    }
    _record(activity, ml_prod, MALLORY, "AttachRolePolicy", denied, now - timedelta(days=5),
            error_code="AccessDenied")  # fmt: skip
    leash = Human("leash", grant_role)  # a role session, as Leash's grant role writes
    grant = {"roleName": "notebook-helper-agent", "policyName": "leash-grant-g-past"}
    _record(activity, ml_dev, leash, "PutRolePolicy", grant, now - timedelta(days=40))
    _record(activity, ml_dev, leash, "DeleteRolePolicy", grant, now - timedelta(days=39))


def _record(
    activity: ActivityLog,
    account: str,
    who: Human,
    event_name: str,
    parameters: dict[str, str],
    when: datetime,
    *,
    invoked_by: str = "",
    error_code: str = "",
) -> None:
    resources = [
        ("AWS::IAM::Role" if key == "roleName" else "AWS::IAM::User", value)
        for key, value in parameters.items()
        if key in ("roleName", "userName")
    ]
    if "policyArn" in parameters:
        resources.append(("AWS::IAM::Policy", parameters["policyArn"]))
    activity.record_event(
        TrailEvent(
            account=account,
            principal_arn=who.arn(account),
            username=who.name,
            event_name=event_name,
            event_source=IAM,
            event_time=when,
            resources=tuple(resources),
            read_only=False,
            request_parameters=parameters,
            invoked_by=invoked_by,
            error_code=error_code,
        )
    )
