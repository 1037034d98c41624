"""Tests for the policy file schema."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from bot.domain.rules import ApproverRole, PermissionSet, Rules, TierRule
from bot.domain.states import Tier

ALL_ROLES = (ApproverRole.OWNER, ApproverRole.BACKUP, ApproverRole.ADMINS)


def _tiers(**overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    tiers: dict[str, dict[str, Any]] = {
        "normal": {"max_duration": "8h"},
        "privileged": {"max_duration": "2h"},
        "escalation": {"max_duration": "1h", "approvers": ["admins"]},
        "break_glass": {"max_duration": "1h", "approvals": 2},
    }
    tiers.update(overrides)
    return tiers


@pytest.mark.parametrize(
    ("tier", "max_duration", "approvals", "approvers"),
    [
        pytest.param(Tier.NORMAL, timedelta(hours=8), 1, ALL_ROLES, id="normal"),
        pytest.param(Tier.PRIVILEGED, timedelta(hours=2), 1, ALL_ROLES, id="privileged"),
        pytest.param(
            Tier.ESCALATION, timedelta(hours=1), 1, (ApproverRole.ADMINS,), id="escalation"
        ),
        pytest.param(Tier.BREAK_GLASS, timedelta(hours=1), 2, ALL_ROLES, id="break-glass"),
    ],
)
def test_default_tiers(
    tier: Tier, max_duration: timedelta, approvals: int, approvers: tuple[ApproverRole, ...]
) -> None:
    rule = Rules().tier_rule(tier)
    assert rule.max_duration == max_duration
    assert rule.approvals == approvals
    assert rule.approvers == approvers


def test_default_timings_and_people() -> None:
    rules = Rules()
    assert rules.admins == frozenset()
    assert rules.bots == frozenset()
    assert rules.approvals_channel is None
    assert rules.permission_sets == {}
    assert rules.requests.decide_within == timedelta(hours=1)
    assert rules.requests.remind_after == timedelta(minutes=10)
    assert rules.requests.escalate_after == timedelta(minutes=20)
    assert rules.grants.min_duration == timedelta(minutes=5)
    assert rules.grants.expiry_warning == timedelta(minutes=5)
    assert rules.grants.revoke_attempts == 5
    assert rules.grants.revoke_backoff == timedelta(seconds=10)
    assert rules.grants.irrevocable_retry == timedelta(days=1)


def test_durations_are_read_from_strings() -> None:
    rules = Rules.model_validate(
        {
            "admins": ["secops", "secops", "alice"],
            "requests": {"decide_within": "2h", "remind_after": "15m", "escalate_after": "1h30m"},
            "grants": {"min_duration": "1m", "revoke_backoff": "30s", "irrevocable_retry": "2d"},
            "tiers": _tiers(normal={"max_duration": "1d"}),
        }
    )
    assert rules.admins == frozenset({"secops", "alice"})
    assert rules.requests.decide_within == timedelta(hours=2)
    assert rules.requests.remind_after == timedelta(minutes=15)
    assert rules.requests.escalate_after == timedelta(minutes=90)
    assert rules.grants.min_duration == timedelta(minutes=1)
    assert rules.grants.revoke_backoff == timedelta(seconds=30)
    assert rules.grants.irrevocable_retry == timedelta(days=2)
    assert rules.tier_rule(Tier.NORMAL).max_duration == timedelta(days=1)


def test_permission_set_reads_tier_and_actions() -> None:
    rules = Rules.model_validate(
        {
            "permission_sets": {
                "admin": {"actions": ["*"], "tier": "break_glass", "description": "all"},
                "read": {"actions": ["s3:GetObject", "s3:List*"], "resources": ["arn:aws:s3:::b"]},
            }
        }
    )
    admin, read = rules.permission_sets["admin"], rules.permission_sets["read"]
    assert admin.tier is Tier.BREAK_GLASS
    assert admin.actions == ("*",)
    assert read.tier is None
    assert read.actions == ("s3:GetObject", "s3:List*")
    assert read.resources == ("arn:aws:s3:::b",)
    assert read.description == ""


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        pytest.param({"admin": ["x"]}, "admin", id="unknown-top-level-key"),
        pytest.param({"grants": {"min_durations": "5m"}}, "min_durations", id="unknown-grant-key"),
        pytest.param(
            {"tiers": _tiers(normal={"max_duration": "8h", "approvals": 0})},
            "approvals",
            id="zero-approvals",
        ),
        pytest.param(
            {"tiers": _tiers(normal={"max_duration": "8h", "approvals": 6})},
            "approvals",
            id="six-approvals",
        ),
        pytest.param(
            {"tiers": _tiers(normal={"max_duration": "8h", "approvers": ["manager"]})},
            "approvers",
            id="unknown-approver-role",
        ),
        pytest.param({"tiers": _tiers(normal={})}, "max_duration", id="tier-without-max"),
        pytest.param(
            {"tiers": {**_tiers(), "super": {"max_duration": "1h"}}}, "super", id="unknown-tier"
        ),
        pytest.param(
            {"tiers": {"normal": {"max_duration": "8h"}}},
            "tiers missing: privileged, escalation, break_glass",
            id="missing-tiers",
        ),
        pytest.param(
            {"tiers": _tiers(normal={"max_duration": "1m"})},
            "tiers.normal.max_duration is below grants.min_duration",
            id="max-below-min",
        ),
        pytest.param(
            {"permission_sets": {"x": {"actions": []}}}, "actions", id="set-without-actions"
        ),
        pytest.param(
            {"permission_sets": {"x": {"actions": ["s3 GetObject", "ok:Fine"]}}},
            "invalid action(s): s3 GetObject",
            id="set-with-invalid-action",
        ),
        pytest.param(
            {"permission_sets": {"x": {"actions": ["s3:GetObject"], "tier": "gold"}}},
            "tier",
            id="set-with-unknown-tier",
        ),
        pytest.param(
            {"grants": {"revoke_attempts": 0}}, "revoke_attempts", id="zero-revoke-attempts"
        ),
        pytest.param({"admins": "secops"}, "admins", id="admins-not-a-list"),
    ],
)
def test_invalid_policy_is_refused(data: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Rules.model_validate(data)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        pytest.param({"grants": {"min_duration": "soon"}}, "min_duration", id="grants"),
        pytest.param({"requests": {"remind_after": "10 minutes"}}, "remind_after", id="requests"),
        pytest.param({"tiers": _tiers(normal={"max_duration": "8x"})}, "max_duration", id="tier"),
        pytest.param({"grants": {"expiry_warning": "0m"}}, "expiry_warning", id="zero"),
    ],
)
def test_bad_duration_string_is_a_validation_error(data: dict[str, Any], where: str) -> None:
    # A ValidationError carries the key's location; load_rules relies on it to name the key.
    with pytest.raises(ValidationError) as caught:
        Rules.model_validate(data)
    assert where in str(caught.value)


def test_rules_are_frozen() -> None:
    rules = Rules()
    with pytest.raises(ValidationError):
        rules.admins = frozenset({"mallory"})  # type: ignore[misc]
    with pytest.raises(ValidationError):
        rules.tier_rule(Tier.NORMAL).approvals = 3  # type: ignore[misc]


def test_tier_rule_and_permission_set_build_directly() -> None:
    rule = TierRule(max_duration=timedelta(minutes=30), approvals=3)
    assert rule.approvers == ALL_ROLES
    pset = PermissionSet(actions=("iam:PassRole",), tier=Tier.ESCALATION)
    assert pset.resources == ()
