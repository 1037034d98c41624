"""Tests for the pure policy decisions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.policy import Draft, Owners, decide, tier_for
from bot.domain.rules import ApproverRole, Rules, TierRule
from bot.domain.states import ActorKind, Tier

HOUR = timedelta(hours=1)
READ = ("s3:GetObject",)
PRIVILEGED = ("bedrock:UpdateFlow",)
ESCALATION = ("iam:PassRole",)
CREDENTIAL = ("sts:GetSessionToken",)
EVERYTHING = ("*",)

RULES = Rules(admins=frozenset({"zed", "secops"}), bots=frozenset({"leash-bot"}))
OWNED = Owners(primary="alice", backup="bob")


def _draft(
    actions: tuple[str, ...] = READ,
    *,
    requester: str = "carol",
    duration: timedelta = HOUR,
    forced_tier: Tier | None = None,
    identity: str = "agent-x",
) -> Draft:
    return Draft(
        identity_name=identity,
        requester=requester,
        requester_kind=ActorKind.USER,
        actions=actions,
        duration=duration,
        forced_tier=forced_tier,
    )


def _rules(**tiers: TierRule) -> Rules:
    merged = dict(Rules().tiers)
    merged.update({Tier(name): rule for name, rule in tiers.items()})
    return Rules(admins=RULES.admins, bots=RULES.bots, tiers=merged)


# --- tier_for ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actions", "tier", "reason"),
    [
        pytest.param((), Tier.NORMAL, "no privileged action: tier normal", id="nothing"),
        pytest.param(READ, Tier.NORMAL, "no privileged action: tier normal", id="read"),
        pytest.param(
            PRIVILEGED,
            Tier.PRIVILEGED,
            "includes privileged actions: tier privileged",
            id="privileged",
        ),
        pytest.param(
            ESCALATION,
            Tier.ESCALATION,
            "includes escalation actions: tier escalation",
            id="escalation",
        ),
        pytest.param(
            CREDENTIAL,
            Tier.ESCALATION,
            "includes credential actions: tier escalation",
            id="credential-is-escalation",
        ),
        pytest.param(
            ("IAM:passrole",),
            Tier.ESCALATION,
            "includes escalation actions: tier escalation",
            id="case-insensitive",
        ),
        pytest.param(
            ("iam:Pass*",),
            Tier.ESCALATION,
            "includes escalation actions: tier escalation",
            id="wildcard-pattern",
        ),
        pytest.param(
            PRIVILEGED + READ + ESCALATION,
            Tier.ESCALATION,
            "includes escalation and privileged actions: tier escalation",
            id="highest-category-wins",
        ),
        pytest.param(
            EVERYTHING, Tier.BREAK_GLASS, "'*' asks for every action: break-glass", id="star"
        ),
        pytest.param(
            ("*:*",), Tier.BREAK_GLASS, "'*' asks for every action: break-glass", id="star-star"
        ),
        pytest.param(
            (*READ, "*"),
            Tier.BREAK_GLASS,
            "'*' asks for every action: break-glass",
            id="star-among-others",
        ),
    ],
)
def test_tier_for(actions: tuple[str, ...], tier: Tier, reason: str) -> None:
    assert tier_for(actions) == (tier, (reason,))


@pytest.mark.parametrize(
    ("actions", "forced", "tier", "forced_reason"),
    [
        pytest.param(READ, Tier.PRIVILEGED, Tier.PRIVILEGED, True, id="raises-normal"),
        pytest.param(EVERYTHING, Tier.BREAK_GLASS, Tier.BREAK_GLASS, False, id="same-tier"),
        pytest.param(READ, Tier.BREAK_GLASS, Tier.BREAK_GLASS, True, id="break-glass-set"),
        pytest.param(ESCALATION, Tier.PRIVILEGED, Tier.ESCALATION, False, id="never-lowers"),
        pytest.param(READ, Tier.NORMAL, Tier.NORMAL, False, id="normal-is-no-force"),
    ],
)
def test_forced_tier_only_raises(
    actions: tuple[str, ...], forced: Tier, tier: Tier, forced_reason: bool
) -> None:
    found, reasons = tier_for(actions, forced)
    assert found is tier
    assert (f"the permission set is marked {forced}" in reasons) is forced_reason


# --- decide: approvers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actions", "tier", "approvals", "max_duration", "limits"),
    [
        pytest.param(
            READ,
            Tier.NORMAL,
            1,
            timedelta(hours=8),
            "normal needs 1 approval, for at most 8h",
            id="normal",
        ),
        pytest.param(
            PRIVILEGED,
            Tier.PRIVILEGED,
            1,
            timedelta(hours=2),
            "privileged needs 1 approval, for at most 2h",
            id="privileged",
        ),
        pytest.param(
            ESCALATION,
            Tier.ESCALATION,
            1,
            HOUR,
            "escalation needs 1 approval, for at most 1h",
            id="escalation",
        ),
        pytest.param(
            EVERYTHING,
            Tier.BREAK_GLASS,
            2,
            HOUR,
            "break_glass needs 2 approvals, for at most 1h",
            id="break-glass",
        ),
    ],
)
def test_decide_each_tier(
    actions: tuple[str, ...], tier: Tier, approvals: int, max_duration: timedelta, limits: str
) -> None:
    decision = decide(_draft(actions), owners=OWNED, rules=RULES)
    assert decision.allowed
    assert decision.refusal is None
    assert decision.tier is tier
    assert decision.approvals_required == approvals
    assert decision.max_duration == max_duration
    assert decision.reasons[-1] == limits


def test_owned_identity_approvers_are_primary_backup_then_sorted_admins() -> None:
    decision = decide(_draft(), owners=OWNED, rules=RULES)
    assert decision.approvers == ("alice", "bob", "secops", "zed")
    assert decision.reasons == (
        "no privileged action: tier normal",
        "alice owns agent-x (confirmed owner)",
        "bob is the backup owner",
        "admins (secops, zed) may approve normal",
        "normal needs 1 approval, for at most 8h",
    )


@pytest.mark.parametrize(
    ("requester", "approvers"),
    [
        pytest.param("alice", ("bob", "secops", "zed"), id="owner-requests"),
        pytest.param("bob", ("alice", "secops", "zed"), id="backup-requests"),
        pytest.param("zed", ("alice", "bob", "secops"), id="admin-requests"),
        pytest.param("carol", ("alice", "bob", "secops", "zed"), id="someone-else-requests"),
    ],
)
def test_requester_never_among_approvers(requester: str, approvers: tuple[str, ...]) -> None:
    decision = decide(_draft(requester=requester), owners=OWNED, rules=RULES)
    assert decision.approvers == approvers
    assert requester not in decision.approvers


def test_bots_never_among_approvers() -> None:
    rules = Rules(admins=frozenset({"secops", "leash-bot"}), bots=frozenset({"leash-bot", "ci"}))
    decision = decide(_draft(), owners=Owners(primary="ci", backup="bob"), rules=rules)
    assert decision.approvers == ("bob", "secops")


def test_person_in_two_roles_is_listed_once_first_place() -> None:
    decision = decide(_draft(), owners=Owners(primary="zed", backup="zed"), rules=RULES)
    assert decision.approvers == ("zed", "secops")


def test_owner_without_backup() -> None:
    decision = decide(_draft(), owners=Owners(primary="alice"), rules=RULES)
    assert decision.approvers == ("alice", "secops", "zed")
    assert not any("backup" in reason for reason in decision.reasons)


@pytest.mark.parametrize(
    ("owners", "approvers"),
    [
        pytest.param(Owners(), ("secops", "zed"), id="no-owner-at-all"),
        pytest.param(Owners(backup="bob"), ("bob", "secops", "zed"), id="backup-only"),
    ],
)
def test_unowned_identity_goes_to_admins(owners: Owners, approvers: tuple[str, ...]) -> None:
    decision = decide(_draft(), owners=owners, rules=RULES)
    assert decision.allowed
    assert decision.approvers == approvers
    assert "agent-x has no owner: admins decide" in decision.reasons


def test_unowned_identity_goes_to_admins_even_when_tier_lists_only_owner() -> None:
    rules = _rules(normal=TierRule(max_duration=HOUR, approvers=(ApproverRole.OWNER,)))
    decision = decide(_draft(), owners=Owners(), rules=rules)
    assert decision.approvers == ("secops", "zed")
    assert decision.allowed


@pytest.mark.parametrize(
    ("actions", "forced"),
    [
        pytest.param(ESCALATION, None, id="escalation-action"),
        pytest.param(CREDENTIAL, None, id="credential-action"),
        pytest.param(READ, Tier.ESCALATION, id="set-marked-escalation"),
    ],
)
def test_escalation_approvers_are_admins_only_by_default(
    actions: tuple[str, ...], forced: Tier | None
) -> None:
    decision = decide(_draft(actions, forced_tier=forced), owners=OWNED, rules=RULES)
    assert decision.tier is Tier.ESCALATION
    assert decision.approvers == ("secops", "zed")
    assert not any("alice" in reason or "bob" in reason for reason in decision.reasons)
    assert "admins (secops, zed) may approve escalation" in decision.reasons


def test_escalation_without_admins_is_refused_even_with_owners() -> None:
    decision = decide(_draft(ESCALATION), owners=OWNED, rules=Rules())
    assert decision.approvers == ()
    assert decision.refusal is not None
    assert "1 approver(s) needed, 0 available" in decision.refusal


def test_flagged_lists_catalogued_actions() -> None:
    decision = decide(_draft((*READ, *PRIVILEGED, *ESCALATION)), owners=OWNED, rules=RULES)
    assert [m.entry.action for m in decision.flagged] == ["bedrock:UpdateFlow", "iam:PassRole"]


# --- decide: break-glass ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("requester", "owners", "admins", "allowed"),
    [
        pytest.param("carol", Owners("alice", "bob"), (), True, id="owner-and-backup"),
        pytest.param("carol", Owners("alice"), ("secops",), True, id="owner-and-admin"),
        pytest.param("carol", Owners("alice"), (), False, id="owner-alone"),
        pytest.param("alice", Owners("alice", "bob"), (), False, id="requester-is-one-of-two"),
        pytest.param("carol", Owners(), ("secops",), False, id="one-admin-unowned"),
        pytest.param("carol", Owners(), ("secops", "zed"), True, id="two-admins-unowned"),
        pytest.param("carol", Owners("alice", "alice"), (), False, id="same-person-twice"),
    ],
)
def test_break_glass_needs_two_distinct_approvers(
    requester: str, owners: Owners, admins: tuple[str, ...], allowed: bool
) -> None:
    rules = Rules(admins=frozenset(admins))
    decision = decide(_draft(EVERYTHING, requester=requester), owners=owners, rules=rules)
    assert decision.tier is Tier.BREAK_GLASS
    assert decision.approvals_required == 2
    assert decision.allowed is allowed
    if not allowed:
        assert decision.refusal is not None
        assert "2 approver(s) needed" in decision.refusal


def test_break_glass_permission_set_is_forced() -> None:
    decision = decide(_draft(READ, forced_tier=Tier.BREAK_GLASS), owners=OWNED, rules=RULES)
    assert decision.tier is Tier.BREAK_GLASS
    assert decision.approvals_required == 2
    assert "the permission set is marked break_glass" in decision.reasons


# --- decide: refusals -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actions", "duration", "refusal"),
    [
        pytest.param(READ, timedelta(hours=8), None, id="normal-at-max"),
        pytest.param(
            READ,
            timedelta(hours=8, seconds=1),
            "8h1s is longer than the 8h allowed for this tier; ask for less.",
            id="normal-one-second-over",
        ),
        pytest.param(PRIVILEGED, timedelta(hours=2), None, id="privileged-at-max"),
        pytest.param(
            PRIVILEGED,
            timedelta(hours=3),
            "3h is longer than the 2h allowed for this tier; ask for less.",
            id="privileged-over",
        ),
        pytest.param(ESCALATION, HOUR, None, id="escalation-at-max"),
        pytest.param(
            ESCALATION,
            timedelta(minutes=61),
            "1h1m is longer than the 1h allowed for this tier; ask for less.",
            id="escalation-over",
        ),
        pytest.param(
            EVERYTHING,
            timedelta(hours=2),
            "2h is longer than the 1h allowed for this tier; ask for less.",
            id="break-glass-over",
        ),
        pytest.param(READ, timedelta(minutes=5), None, id="at-min"),
        pytest.param(READ, timedelta(minutes=4), "The shortest grant is 5m.", id="under-min"),
        pytest.param(
            READ, timedelta(seconds=299), "The shortest grant is 5m.", id="one-second-under-min"
        ),
    ],
)
def test_duration_limits(
    actions: tuple[str, ...], duration: timedelta, refusal: str | None
) -> None:
    decision = decide(_draft(actions, duration=duration), owners=OWNED, rules=RULES)
    assert decision.refusal == refusal
    assert decision.allowed is (refusal is None)


def test_custom_tier_max_is_used() -> None:
    rules = _rules(normal=TierRule(max_duration=timedelta(minutes=30)))
    decision = decide(_draft(duration=timedelta(minutes=31)), owners=OWNED, rules=rules)
    assert decision.refusal == "31m is longer than the 30m allowed for this tier; ask for less."


@pytest.mark.parametrize(
    ("requester", "owners", "rules"),
    [
        pytest.param("carol", Owners(), Rules(), id="unowned-no-admins"),
        pytest.param("alice", Owners("alice"), Rules(), id="requester-sole-owner"),
        pytest.param(
            "alice", Owners("alice"), Rules(admins=frozenset({"alice"})), id="requester-is-all"
        ),
        pytest.param(
            "carol",
            Owners("leash-bot"),
            Rules(bots=frozenset({"leash-bot"})),
            id="only-a-bot-owner",
        ),
    ],
)
def test_no_available_approver_is_refused(requester: str, owners: Owners, rules: Rules) -> None:
    decision = decide(_draft(requester=requester), owners=owners, rules=rules)
    assert decision.approvers == ()
    assert decision.refusal == (
        "No one but you can approve this (1 approver(s) needed, 0 available): "
        "register an owner or add admins."
    )


def test_decide_reports_duration_refusal_before_missing_approvers() -> None:
    decision = decide(_draft(duration=timedelta(days=1)), owners=Owners(), rules=Rules())
    assert decision.refusal is not None
    assert decision.refusal.startswith("1d is longer than the 8h")
