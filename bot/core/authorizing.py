"""Gathering the facts the authority module decides on, and refusing with its reason."""

from __future__ import annotations

from dataclasses import replace

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.persons import CHAT_ORIGINS, expanded
from bot.domain import handles
from bot.domain.actors import Actor
from bot.domain.authority import Facts, Rank, Subject, Verb, Verdict, decide, people
from bot.domain.errors import NotAllowedError
from bot.domain.policy import Owners, eligible_approvers
from bot.domain.rules import Rules
from bot.domain.states import ActorKind
from bot.store.tables import AccessRequest, Identity, Ownership


def identity_facts(
    identity: Identity | None,
    ownership: Ownership | None,
    rules: Rules,
    *,
    placed_as: Rank | None = None,
) -> Facts:
    """Who answers for an identity (owners confirmed or proposed) and who the admins are."""
    return Facts(
        identity_name=identity.name if identity else "the identity",
        identity_id=identity.id if identity else None,
        admins=people(rules.admins),
        bots=people(rules.bots),
        owner=people([ownership.primary_owner] if ownership else []),
        backup=people([ownership.backup_owner] if ownership else []),
        proposed_owner=people([ownership.proposed_owner] if ownership else []),
        placed_as=placed_as,
        owner_name=ownership.primary_owner if ownership else None,
    )


def requester_keys(request: AccessRequest) -> frozenset[str]:
    """The requester's canonical handles as stored (older rows: their recorded name)."""
    if request.requester_handles:
        return frozenset(request.requester_handles)
    if request.requester_kind == ActorKind.AGENT:
        return frozenset({handles.key(handles.HandleKind.AGENT, request.requester)})
    return handles.keys_for([request.requester])


def requester_anchored(request: AccessRequest) -> bool:
    """Whether the requester is known by more than a chat platform's own user id."""
    if request.requester_kind != ActorKind.USER or request.origin not in CHAT_ORIGINS:
        return True
    return handles.anchored(requester_keys(request))


async def request_facts(
    request: AccessRequest,
    *,
    session: AsyncSession,
    rules: Rules,
    also_requesters: frozenset[str] = frozenset(),
    prior_approvals: tuple[frozenset[str], ...] = (),
) -> Facts:
    """The facts of a request: its identity's owners, its requester(s), its approvers."""
    identity = await session.get(Identity, request.identity_id)
    ownership = await session.get(Ownership, request.identity_id)
    approvers = still_eligible(request, ownership, rules)
    return replace(
        identity_facts(identity, ownership, rules),
        requester=requester_keys(request) | also_requesters,
        requester_anchored=requester_anchored(request),
        approvers=people(approvers),
        approver_names=approvers,
        prior_approvals=prior_approvals,
    )


def still_eligible(
    request: AccessRequest, ownership: Ownership | None, rules: Rules
) -> tuple[str, ...]:
    """The request's approvers who may still approve it: those it named when it was made and
    that its tier's roles still give to them now (owner, backup, admins)."""
    owners = Owners(
        primary=ownership.primary_owner if ownership else None,
        backup=ownership.backup_owner if ownership else None,
    )
    now = people(eligible_approvers(request.tier, owners=owners, rules=rules))
    return tuple(name for name in request.approvers if people([name]) & now)


def check(verb: Verb, actor: Actor, facts: Facts) -> Verdict:
    """Raise NotAllowedError with the reason to show unless the actor may do `verb`."""
    verdict = decide(verb, Subject.of(actor), facts)
    if not verdict.allowed:
        raise NotAllowedError(verdict.reason)
    return verdict


async def check_on_identity(
    verb: Verb,
    actor: Actor,
    identity: Identity,
    *,
    session: AsyncSession,
    rules: Rules,
    placed_as: Rank | None = None,
) -> Verdict:
    """Check a verb on an identity against its current owners (refuses with the reason)."""
    ownership = await session.get(Ownership, identity.id)
    facts = identity_facts(identity, ownership, rules, placed_as=placed_as)
    return check(verb, await expanded(actor, session=session), facts)


def placed_as(actor: Actor, rules: Rules) -> str:
    """The authority an actor places an enforcement with: admin, owner or system."""
    if actor.kind is not ActorKind.USER:
        return "system"
    return "admin" if actor.is_one_of(rules.admins) else "owner"


def check_everywhere(verb: Verb, actor: Actor, rules: Rules) -> Verdict:
    """Check a verb about no one identity (scan all, guardrails for all, a digest)."""
    return check(verb, actor, identity_facts(None, None, rules))
