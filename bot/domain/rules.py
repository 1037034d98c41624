"""The policy file's schema: permission sets, tiers, approvers, timings."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from bot.domain.catalog import is_valid_action
from bot.domain.durations import parse_duration
from bot.domain.errors import InvalidDurationError
from bot.domain.models import Tier


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
    description: str = ""
    actions: tuple[str, ...] = Field(min_length=1)
    resources: tuple[str, ...] = ()
    tier: Tier | None = None

    @model_validator(mode="after")
    def _actions_are_valid(self) -> Self:
        bad = [a for a in self.actions if not is_valid_action(a)]
        if bad:
            raise ValueError(f"invalid action(s): {', '.join(bad)}")
        return self


class RequestTimings(_Frozen):
    decide_within: Duration = timedelta(hours=1)
    remind_after: Duration = timedelta(minutes=10)
    escalate_after: Duration = timedelta(minutes=20)


class GrantTimings(_Frozen):
    min_duration: Duration = timedelta(minutes=5)
    expiry_warning: Duration = timedelta(minutes=5)
    revoke_attempts: int = Field(default=5, ge=1, le=50)
    revoke_backoff: Duration = timedelta(seconds=10)
    irrevocable_retry: Duration = timedelta(days=1)


class Rules(_Frozen):
    """Everything the policy file says; the defaults are safe for a small team."""

    admins: frozenset[str] = frozenset()
    bots: frozenset[str] = frozenset()
    approvals_channel: str | None = None
    tiers: dict[Tier, TierRule] = Field(default_factory=_default_tiers)
    permission_sets: dict[str, PermissionSet] = Field(default_factory=dict)
    requests: RequestTimings = RequestTimings()
    grants: GrantTimings = GrantTimings()

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
