"""Pure least-privilege judgements: unused only when old enough, risk, guardrail, exemptions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain import catalog
from bot.domain.findings import Risk, exemptions_for, guardrail_actions, judge
from bot.domain.rules import LeastPrivilegeRules
from bot.store.tables import Grant, Identity, UsageScan
from cloud.base import IdentityKind, IdentityRef, UsageReport, UsageStatus

NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
RULES = LeastPrivilegeRules()
REF = IdentityRef("aws", "111111111111", "arn:aws:iam::111111111111:role/a", "a", IdentityKind.ROLE)


def _identity(created_days_ago: int | None = 400) -> Identity:
    created = NOW - timedelta(days=created_days_ago) if created_days_ago is not None else None
    return Identity(
        id="i-1",
        provider="aws",
        account="111111111111",
        native_id=REF.native_id,
        name="a",
        kind="role",
        discovered_at=NOW,
        created_at=created,
    )


def _report(**values: object) -> UsageReport:
    base: dict[str, object] = {
        "identity": REF,
        "status": UsageStatus.COMPLETE,
        "since": NOW - RULES.unused_after,
        "granted": ("s3:GetObject", "iam:*", "bedrock:InvokeModel"),
        "used": {"bedrock:InvokeModel": NOW - timedelta(days=1)},
        "not_used": ("iam:*",),
        "unknown": ("s3:GetObject",),
        "last_activity_at": NOW - timedelta(days=1),
    }
    return UsageReport(**(base | values))  # type: ignore[arg-type]


def test_unused_needs_a_grant_older_than_the_window() -> None:
    old = judge(_report(), identity=_identity(400), previous=None, rules=RULES, now=NOW)
    assert old.unused == ("iam:*",)
    assert old.recent == ()
    young = judge(_report(), identity=_identity(10), previous=None, rules=RULES, now=NOW)
    assert young.unused == ()
    assert young.recent == ("iam:*",)


def test_a_pattern_granted_after_the_first_scan_is_recent() -> None:
    first = judge(
        _report(granted=("bedrock:InvokeModel",), not_used=()),
        identity=_identity(),
        previous=None,
        rules=RULES,
        now=NOW - timedelta(days=1),
    )
    previous = UsageScan(
        identity_id="i-1",
        scanned_at=NOW - timedelta(days=1),
        status="complete",
        granted_since=first.granted_since,
    )
    later = judge(_report(), identity=_identity(), previous=previous, rules=RULES, now=NOW)
    assert later.recent == ("iam:*",)
    assert later.granted_since["iam:*"] == NOW.isoformat()
    assert later.granted_since["bedrock:InvokeModel"] == first.granted_since["bedrock:InvokeModel"]


def test_unknown_usage_never_yields_unused() -> None:
    found = judge(
        _report(status=UsageStatus.UNKNOWN, note="job failed"),
        identity=_identity(),
        previous=None,
        rules=RULES,
        now=NOW,
    )
    assert found.unused == ()
    assert found.status is UsageStatus.UNKNOWN
    assert found.note == "job failed"


def test_inactive_and_risk() -> None:
    quiet = judge(
        _report(last_activity_at=NOW - timedelta(days=200), not_used=()),
        identity=_identity(),
        previous=None,
        rules=RULES,
        now=NOW,
    )
    assert quiet.inactive
    assert quiet.risk is Risk.HIGH  # inactive while holding iam:* (privileged)
    busy = judge(
        _report(granted=("s3:ListBucket",), not_used=("s3:ListBucket",), unknown=()),
        identity=_identity(),
        previous=None,
        rules=RULES,
        now=NOW,
    )
    assert not busy.inactive
    assert busy.risk is Risk.MEDIUM
    clean = judge(
        _report(granted=("s3:ListBucket",), not_used=(), unknown=()),
        identity=_identity(),
        previous=None,
        rules=RULES,
        now=NOW,
    )
    assert clean.risk is Risk.LOW


def test_newly_unused_is_the_change_since_the_previous_scan() -> None:
    long_ago = (NOW - timedelta(days=300)).isoformat()
    previous = UsageScan(
        identity_id="i-1",
        scanned_at=NOW,
        status="complete",
        unused=["iam:*"],
        granted_since={"iam:*": long_ago, "s3:*": long_ago},
    )
    found = judge(
        _report(not_used=("iam:*", "s3:*"), granted=("iam:*", "s3:*")),
        identity=_identity(),
        previous=previous,
        rules=RULES,
        now=NOW,
    )
    assert found.newly_unused == ("s3:*",)


def test_guardrail_actions_follow_the_policy() -> None:
    default = guardrail_actions(RULES)
    assert "iam:PassRole" in default
    assert "iam:CreateAccessKey" in default
    assert "bedrock:UpdateFlow" in default  # privileged, and bedrock is a guarded service
    assert not any(action.startswith("s3:") for action in default)
    assert all("*" not in action for action in default)
    extra = guardrail_actions(
        LeastPrivilegeRules(
            guardrail_categories=(),
            guardrail_privileged_services=(),
            guardrail_extra_actions=("s3:DeleteBucket",),
        )
    )
    assert extra == ("s3:DeleteBucket",)
    assert {entry.action for entry in catalog.entries() if entry.category == "credential"} <= set(
        default
    )


def _grant(grant_id: str, actions: list[str], hours: int) -> Grant:
    return Grant(
        id=grant_id,
        request_id=f"r-{grant_id}",
        identity_id="i-1",
        requester="dev",
        actions=actions,
        created_at=NOW,
        expires_at=NOW + timedelta(hours=hours),
    )


def test_exemptions_cover_guarded_actions_each_grant_approves_for_its_resources() -> None:
    guarded = ("iam:PassRole", "iam:PutRolePolicy", "bedrock:UpdateFlow")
    runner = "arn:aws:iam::123456789012:role/svc-runner"
    g1 = _grant("g1", ["iam:PassRole", "s3:GetObject"], 1)
    g1.resources = [runner]
    found = exemptions_for(
        [g1, _grant("g2", ["iam:passrole"], 2), _grant("g3", ["bedrock:Update*"], 1)],
        guarded,
    )
    assert [(e.action, e.grant_id, e.expires_at, e.resources) for e in found] == [
        ("bedrock:UpdateFlow", "g3", NOW + timedelta(hours=1), ("*",)),
        ("iam:PassRole", "g1", NOW + timedelta(hours=1), (runner,)),
        ("iam:PassRole", "g2", NOW + timedelta(hours=2), ("*",)),
    ]
    assert exemptions_for([_grant("g4", ["s3:*"], 1)], guarded) == ()
