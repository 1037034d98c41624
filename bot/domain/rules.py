"""The policy file's schema: permission sets, tiers, approvers, timings."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from bot.domain.catalog import ActionCategory, is_valid_action
from bot.domain.catalog.azure import is_action as is_azure_action
from bot.domain.catalog.azure import is_role as is_azure_role
from bot.domain.catalog.gcp import is_permission, is_role
from bot.domain.durations import parse_duration
from bot.domain.errors import InvalidDurationError
from bot.domain.states import Tier


def _to_timedelta(value: object) -> object:
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except InvalidDurationError as error:
            raise ValueError(str(error)) from None
    return value


Duration = Annotated[timedelta, BeforeValidator(_to_timedelta)]


class ApproverRole(StrEnum):
    OWNER = "owner"
    BACKUP = "backup"
    ADMINS = "admins"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TierRule(_Frozen):
    max_duration: Duration
    approvals: int = Field(default=1, ge=1, le=5)
    approvers: tuple[ApproverRole, ...] = (
        ApproverRole.OWNER,
        ApproverRole.BACKUP,
        ApproverRole.ADMINS,
    )


def _default_tiers() -> dict[Tier, TierRule]:
    return {
        Tier.NORMAL: TierRule(max_duration=timedelta(hours=8)),
        Tier.PRIVILEGED: TierRule(max_duration=timedelta(hours=2)),
        Tier.ESCALATION: TierRule(
            max_duration=timedelta(hours=1), approvers=(ApproverRole.ADMINS,)
        ),
        Tier.BREAK_GLASS: TierRule(max_duration=timedelta(hours=1), approvals=2),
    }


class PermissionSet(_Frozen):
    """Named permissions: AWS actions, and the Google Cloud roles that mean the same."""

    description: str = ""
    actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    gcp_roles: tuple[str, ...] = ()
    azure_roles: tuple[str, ...] = ()
    tier: Tier | None = None

    @model_validator(mode="after")
    def _actions_are_valid(self) -> Self:
        if not (self.actions or self.gcp_roles or self.azure_roles):
            raise ValueError("name actions (AWS), gcp_roles (Google Cloud) or azure_roles")
        bad = [a for a in self.actions if not is_valid_action(a)]
        if bad:
            raise ValueError(f"invalid action(s): {', '.join(bad)}")
        bad = [r for r in self.gcp_roles if not is_role(r)]
        if bad:
            raise ValueError(f"not GCP role names (roles/…): {', '.join(bad)}")
        bad = [r for r in self.azure_roles if not is_azure_role(r)]
        if bad:
            raise ValueError(f"not Azure role names or definition ids: {', '.join(bad)}")
        return self

    def for_provider(self, provider: str) -> tuple[str, ...]:
        """What this set grants on one cloud (empty when it says nothing for that cloud)."""
        by_provider = {"gcp": self.gcp_roles, "azure": self.azure_roles}
        return by_provider.get(provider, self.actions)


class RequestTimings(_Frozen):
    decide_within: Duration = timedelta(hours=1)
    remind_after: Duration = timedelta(minutes=10)
    escalate_after: Duration = timedelta(minutes=20)
    # Requests waiting for one identity at once (from anyone): more are refused, so an owner
    # is not flooded with cards and a privileged request cannot hide among routine ones.
    max_pending_per_identity: int = Field(default=5, ge=1, le=100)


class GrantTimings(_Frozen):
    min_duration: Duration = timedelta(minutes=5)
    expiry_warning: Duration = timedelta(minutes=5)
    revoke_attempts: int = Field(default=5, ge=1, le=50)
    revoke_backoff: Duration = timedelta(seconds=10)
    irrevocable_retry: Duration = timedelta(days=1)
    # How long a grant being applied or revoked stays claimed: if the process holding it dies,
    # the sweep of another (or the restarted) process resumes it once this has run out.
    lease: Duration = Field(default=timedelta(seconds=60), ge=timedelta(seconds=1))


class TokenRules(_Frozen):
    """Agent API tokens: how long one lives before it must be rotated."""

    max_age: Duration = Field(default=timedelta(days=90), ge=timedelta(minutes=5))


class ClassificationRules(_Frozen):
    """How Leash tells AI agents from other machine identities."""

    agent_tags: dict[str, str] = Field(default_factory=lambda: {"leash:agent": "true"})
    agent_trust_principals: tuple[str, ...] = (
        "bedrock.amazonaws.com",
        "bedrock-agentcore.amazonaws.com",
        "sagemaker.amazonaws.com",
        # Vertex AI (and its Agent Engine) service agents on Google Cloud
        "aiplatform.googleapis.com",
    )
    # fnmatch patterns on the identity's name, e.g. "*-agent".
    agent_name_patterns: tuple[str, ...] = ()


class OwnershipRules(_Frozen):
    """Where owners come from, how often they re-confirm, and who hears about unowned agents."""

    owner_tags: tuple[str, ...] = ("leash:owner", "owner")
    backup_tags: tuple[str, ...] = ("leash:backup-owner", "backup-owner")
    team_tags: tuple[str, ...] = ("leash:team", "team")
    purpose_tags: tuple[str, ...] = ("leash:purpose", "purpose")
    attest_every: Duration = timedelta(days=90)
    # Chat channel (or user) that hears about unowned identities; the admins when unset.
    security_channel: str | None = None


_HH_MM = r"([01]\d|2[0-3]):[0-5]\d"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Schedules(_Frozen):
    """When the nightly work and the weekly digest run (UTC)."""

    nightly_at: str = Field(default="02:00", pattern=f"^{_HH_MM}$")
    # A weekday and a time, e.g. "mon 09:00".
    digest_at: str = Field(default="mon 09:00", pattern=f"^({'|'.join(WEEKDAYS)}) {_HH_MM}$")


class Enforcement(StrEnum):
    """Whether least-privilege actions are written to the cloud or only computed and shown."""

    REPORT = "report"
    ENFORCE = "enforce"


class GuardrailMode(StrEnum):
    OFF = "off"
    REPORT = "report"
    ENFORCE = "enforce"


class LeastPrivilegeRules(_Frozen):
    """The nightly usage scan, restriction, quarantine and the privileged-action guardrail."""

    # A granted action unused this long (and granted longer ago than this) is unused.
    unused_after: Duration = timedelta(days=90)
    # An identity with no activity this long is inactive.
    inactive_after: Duration = timedelta(days=90)
    # "report": restrict / quarantine / guardrail are computed, shown and audited, not written.
    enforcement: Enforcement = Enforcement.REPORT
    # How the nightly scan treats agents' guardrails: off, report (show what it would
    # write), or enforce (write it).
    guardrail: GuardrailMode = GuardrailMode.REPORT
    # The privileged catalogue's categories the guardrail denies, privileged actions of these
    # services, and any extra actions (exact names).
    guardrail_categories: tuple[str, ...] = ("escalation", "credential")
    guardrail_privileged_services: tuple[str, ...] = ("bedrock", "bedrock-agentcore", "sagemaker")
    guardrail_extra_actions: tuple[str, ...] = ()
    # "Keep for 30 days" silences an agent's findings this long.
    keep_for: Duration = timedelta(days=30)
    # Quarantine identities inactive this long whose owner did not answer within
    # `owner_answer_within` of being told (unset: never automatically).
    auto_quarantine_after: Duration | None = None
    owner_answer_within: Duration = timedelta(days=7)
    # Identities scanned at once, and attempts for a throttled cloud call.
    scan_concurrency: int = Field(default=4, ge=1, le=64)
    scan_attempts: int = Field(default=4, ge=1, le=10)

    @model_validator(mode="after")
    def _valid(self) -> Self:
        categories = {category.value for category in ActionCategory}
        unknown = [c for c in self.guardrail_categories if c not in categories]
        if unknown:
            raise ValueError(
                f"guardrail_categories: unknown {', '.join(unknown)} "
                f"(choose from {', '.join(sorted(categories))})"
            )
        bad = [
            a
            for a in self.guardrail_extra_actions
            if not (is_valid_action(a) or is_permission(a) or is_azure_action(a))
            or ("*" in a and not is_azure_action(a))
        ]
        if bad:
            raise ValueError(f"guardrail_extra_actions: not exact actions: {', '.join(bad)}")
        return self


class ChatPlatform(StrEnum):
    SLACK = "slack"
    TEAMS = "teams"


class TeamRule(_Frozen):
    """A team: where its weekly digest goes."""

    channel: str = Field(min_length=1, max_length=256)
    platform: ChatPlatform = ChatPlatform.SLACK


class Rules(_Frozen):
    """Everything the policy file says; the defaults are safe for a small team."""

    admins: frozenset[str] = frozenset()
    bots: frozenset[str] = frozenset()
    approvals_channel: str | None = None
    tiers: dict[Tier, TierRule] = Field(default_factory=_default_tiers)
    permission_sets: dict[str, PermissionSet] = Field(default_factory=dict)
    requests: RequestTimings = RequestTimings()
    grants: GrantTimings = GrantTimings()
    tokens: TokenRules = TokenRules()
    classification: ClassificationRules = ClassificationRules()
    ownership: OwnershipRules = OwnershipRules()
    schedules: Schedules = Schedules()
    least_privilege: LeastPrivilegeRules = LeastPrivilegeRules()
    teams: dict[str, TeamRule] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> Self:
        missing = [tier.value for tier in Tier if tier not in self.tiers]
        if missing:
            raise ValueError(f"tiers missing: {', '.join(missing)}")
        for tier, rule in self.tiers.items():
            if rule.max_duration < self.grants.min_duration:
                raise ValueError(f"tiers.{tier}.max_duration is below grants.min_duration")
        return self

    def tier_rule(self, tier: Tier) -> TierRule:
        return self.tiers[tier]
