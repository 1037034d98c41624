"""Pure, explainable decisions: tier, approvers, approvals needed, duration limits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from bot.domain.catalog import (
    ActionCategory,
    CatalogMatch,
    is_full_wildcard,
    is_valid_action,
    matches,
    resolved_matches,
)
from bot.domain.catalog.gcp import CUSTOM_ROLE_REASON
from bot.domain.durations import format_duration
from bot.domain.handles import key_for_name, keys_for
from bot.domain.rules import ApproverRole, PermissionSet, Rules
from bot.domain.states import ActorKind, Tier
from cloud.base import ResolvedItem

_TIER_ORDER = (Tier.NORMAL, Tier.PRIVILEGED, Tier.ESCALATION, Tier.BREAK_GLASS)
_CATEGORY_TIER = {
    ActionCategory.PRIVILEGED: Tier.PRIVILEGED,
    ActionCategory.CREDENTIAL: Tier.ESCALATION,
    ActionCategory.ESCALATION: Tier.ESCALATION,
}


@dataclass(frozen=True, slots=True)
class Draft:
    """What a requester asks for, before any decision."""

    identity_name: str
    requester: str
    requester_kind: ActorKind
    actions: tuple[str, ...]
    duration: timedelta
    permission_set: str | None = None
    forced_tier: Tier | None = None
    # Everyone who asked, as canonical handles (an extension: its asker and the grant's
    # requester): none of them is ever an approver.
    requester_keys: frozenset[str] = frozenset()
    # What the cloud says each action or role carries: the tier is decided on these too.
    resolved: tuple[ResolvedItem, ...] = ()


@dataclass(frozen=True, slots=True)
class Owners:
    primary: str | None = None
    backup: str | None = None
    # Claimed but not confirmed by an admin: shown, never an approver.
    proposed: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of `decide`, with the reasons a chat message can show."""

    tier: Tier
    approvers: tuple[str, ...]
    approvals_required: int
    max_duration: timedelta
    flagged: tuple[CatalogMatch, ...]
    reasons: tuple[str, ...]
    refusal: str | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def flagged_matches(
    actions: Sequence[str], resolved: Sequence[ResolvedItem] = ()
) -> tuple[CatalogMatch, ...]:
    """Return what the catalogue flags: by the names asked, and by what the cloud resolved.

    A custom role counts as escalation by its name only until the cloud has resolved it.
    """
    named = {item.name for item in resolved}
    found = {
        (m.requested, m.entry.action): m
        for m in matches(actions)
        if not (m.entry.source == CUSTOM_ROLE_REASON and m.requested in named)
    }
    for match in resolved_matches(resolved):
        found.setdefault((match.requested, match.entry.action), match)
    return tuple(found.values())


def tier_for(
    actions: Sequence[str],
    forced: Tier | None = None,
    resolved: Sequence[ResolvedItem] = (),
) -> tuple[Tier, tuple[str, ...]]:
    """Return the tier the actions (and the permissions they resolve to) fall in, and why."""
    tier = Tier.NORMAL
    reasons: list[str] = []
    wildcard = [a for a in actions if is_full_wildcard(a)]
    if wildcard:
        tier = Tier.BREAK_GLASS
        reasons.append("'*' asks for every action: break-glass")
    flagged = flagged_matches(actions, resolved)
    for match in flagged:
        candidate = _CATEGORY_TIER[match.entry.category]
        if _TIER_ORDER.index(candidate) > _TIER_ORDER.index(tier):
            tier = candidate
    seen_categories = sorted({m.entry.category.value for m in flagged})
    if seen_categories and not wildcard:
        reasons.append(f"includes {' and '.join(seen_categories)} actions: tier {tier}")
        # A role tiered on what it carries says which permission decided it.
        carried = [
            m
            for m in resolved_matches(resolved)
            if m.requested.lower() != m.entry.action.lower() and not is_valid_action(m.requested)
        ]
        if carried:
            shown = ", ".join(f"{m.requested} carries {m.entry.action}" for m in carried[:3])
            more = f" and {len(carried) - 3} more" if len(carried) > 3 else ""
            reasons.append(f"{shown}{more}")
    if forced is not None and _TIER_ORDER.index(forced) > _TIER_ORDER.index(tier):
        tier = forced
        reasons.append(f"the permission set is marked {forced}")
    if not reasons:
        reasons.append("no privileged action: tier normal")
    return tier, tuple(reasons)


def eligible_approvers(tier: Tier | str, *, owners: Owners, rules: Rules) -> tuple[str, ...]:
    """Who may approve a request of `tier` now, by the tier's approver roles, the identity's
    current owners and the current admins (the requester is excluded separately).

    A request stores its approvers when it is made; a decision is taken only by those of them
    still eligible, so an owner replaced (or an admin removed) since cannot decide it.
    """
    rule = rules.tier_rule(Tier(tier))
    eligible: list[str] = []
    for role in rule.approvers:
        if role is ApproverRole.OWNER and owners.primary:
            eligible.append(owners.primary)
        elif role is ApproverRole.BACKUP and owners.backup:
            eligible.append(owners.backup)
        elif role is ApproverRole.ADMINS:
            eligible.extend(sorted(rules.admins))
    if owners.primary is None and ApproverRole.OWNER in rule.approvers:
        eligible.extend(sorted(rules.admins))
    return tuple(dict.fromkeys(eligible))


def decide(draft: Draft, *, owners: Owners, rules: Rules) -> Decision:
    """Decide tier, approvers and limits for a draft request; never raises."""
    tier, reasons = tier_for(draft.actions, draft.forced_tier, draft.resolved)
    rule = rules.tier_rule(tier)
    explained = list(reasons)
    candidates: list[str] = []
    for role in rule.approvers:
        if role is ApproverRole.OWNER and owners.primary:
            candidates.append(owners.primary)
            explained.append(f"{owners.primary} owns {draft.identity_name} (confirmed owner)")
        elif role is ApproverRole.BACKUP and owners.backup:
            candidates.append(owners.backup)
            explained.append(f"{owners.backup} is the backup owner")
        elif role is ApproverRole.ADMINS and rules.admins:
            candidates.extend(sorted(rules.admins))
            explained.append(f"admins ({', '.join(sorted(rules.admins))}) may approve {tier}")
    if owners.primary is None and owners.proposed:
        explained.append(
            f"{owners.proposed} is the proposed owner (claim not confirmed by an admin): "
            "not an approver"
        )
    if owners.primary is None and ApproverRole.OWNER in rule.approvers:
        explained.append(f"{draft.identity_name} has no owner: admins decide")
        candidates.extend(sorted(rules.admins))
    excluded = draft.requester_keys | keys_for([draft.requester, *rules.bots])
    approvers = tuple(dict.fromkeys(c for c in candidates if key_for_name(c) not in excluded))
    explained.append(
        f"{tier} needs {rule.approvals} approval{'s' if rule.approvals > 1 else ''}, "
        f"for at most {format_duration(rule.max_duration)}"
    )
    flagged = flagged_matches(draft.actions, draft.resolved)
    refusal = _refusal(draft, rule.max_duration, rule.approvals, approvers, rules)
    return Decision(
        tier=tier,
        approvers=approvers,
        approvals_required=rule.approvals,
        max_duration=rule.max_duration,
        flagged=flagged,
        reasons=tuple(explained),
        refusal=refusal,
    )


def _refusal(
    draft: Draft,
    max_duration: timedelta,
    approvals: int,
    approvers: tuple[str, ...],
    rules: Rules,
) -> str | None:
    if draft.duration > max_duration:
        return (
            f"{format_duration(draft.duration)} is longer than the "
            f"{format_duration(max_duration)} allowed for this tier; ask for less."
        )
    if draft.duration < rules.grants.min_duration:
        return f"The shortest grant is {format_duration(rules.grants.min_duration)}."
    if len(approvers) < approvals:
        return (
            f"No one but you can approve this ({approvals} approver(s) needed, "
            f"{len(approvers)} available): register an owner or add admins."
        )
    return None


def resolve_permission_set(name: str, rules: Rules) -> PermissionSet | None:
    """Return the named permission set, or None."""
    return rules.permission_sets.get(name)
