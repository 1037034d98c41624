"""Who may do what to which object: one table, pure and explainable, like the policy decision.

Every "may this person do this" question of Leash is answered here, on canonical handles
(bot.domain.handles), never on the names a person typed. The caller gathers the facts about
the object (who asked, who owns it, who placed a quarantine, who approved already) and the
answer says yes or no with the sentence to show and to audit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from bot.domain import handles
from bot.domain.actors import Actor
from bot.domain.states import ActorKind


class Verb(StrEnum):
    APPROVE = "approve"
    DENY = "deny"
    CANCEL = "cancel"
    REVOKE = "revoke"
    EXTEND = "extend"
    QUARANTINE = "quarantine"
    RELEASE = "release"
    RESTRICT = "restrict"
    UNRESTRICT = "unrestrict"
    KEEP = "keep"
    DISOWN = "disown"
    OWNER_SET = "owner set"
    OWNER_CLAIM = "owner claim"
    OWNER_CONFIRM = "owner confirm"
    ATTEST = "attest"
    # Verbs, not secrets.
    TOKEN_ISSUE = "token issue"  # noqa: S105
    TOKEN_REVOKE = "token revoke"  # noqa: S105
    TOKEN_LIST = "token list"  # noqa: S105
    GUARDRAIL_APPLY = "guardrail apply"
    GUARDRAIL_APPLY_ALL = "guardrail apply all"
    DIGEST = "digest"
    SCAN = "scan"
    SCAN_ALL = "scan all"
    SEE_REQUEST = "see request"


class Role(StrEnum):
    """What a subject is to the object; one subject may hold several roles."""

    REQUESTER = "requester"
    APPROVER = "listed approver"
    OWNER = "owner"
    BACKUP = "backup owner"
    PROPOSED_OWNER = "proposed owner"
    ADMIN = "admin"
    AGENT = "the identity's agent"
    OTHER_AGENT = "another agent"
    BOT = "bot"
    SYSTEM = "leash"
    ANYONE = "anyone"


class Rank(IntEnum):
    """The authority an enforcement is placed with; lifting it needs at least as much."""

    OWNER = 1
    ADMIN = 2


PLACED_AS = {"owner": Rank.OWNER, "system": Rank.OWNER, "admin": Rank.ADMIN}


@dataclass(frozen=True, slots=True)
class Subject:
    """The one who asks: their canonical keys, what kind they are, and if Leash is sure who."""

    keys: frozenset[str]
    kind: ActorKind
    resolved: bool = True

    @classmethod
    def of(cls, actor: Actor) -> Subject:
        return cls(keys=actor.keys, kind=actor.kind, resolved=actor.resolved)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the decision needs to know about the object, every person as canonical keys."""

    identity_name: str = "the identity"
    identity_id: str | None = None
    admins: frozenset[str] = frozenset()
    bots: frozenset[str] = frozenset()
    owner: frozenset[str] = frozenset()
    backup: frozenset[str] = frozenset()
    proposed_owner: frozenset[str] = frozenset()
    requester: frozenset[str] = frozenset()
    # Whether the requester's keys can tell them from a person on another surface.
    requester_anchored: bool = True
    approvers: frozenset[str] = frozenset()
    approver_names: tuple[str, ...] = ()
    prior_approvals: tuple[frozenset[str], ...] = ()
    placed_as: Rank | None = None
    # The current owner as registered, shown when `owner set` is refused.
    owner_name: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reason: str
    roles: frozenset[Role] = frozenset()


def people(names: Iterable[str | None]) -> frozenset[str]:
    """The canonical keys of names as the policy file or the inventory holds them."""
    return handles.keys_for(names)


def roles_of(subject: Subject, facts: Facts) -> frozenset[Role]:
    """Every role the subject holds towards the object."""
    if subject.kind is ActorKind.SYSTEM:
        return frozenset({Role.SYSTEM})
    if subject.kind is ActorKind.AGENT:
        own = facts.identity_id is not None and (
            handles.key(handles.HandleKind.AGENT, facts.identity_id) in subject.keys
        )
        return frozenset({Role.AGENT if own else Role.OTHER_AGENT})
    keys = subject.keys
    held: set[Role] = {Role.ANYONE}
    checks = (
        (Role.BOT, facts.bots),
        (Role.ADMIN, facts.admins),
        (Role.OWNER, facts.owner),
        (Role.BACKUP, facts.backup),
        (Role.PROPOSED_OWNER, facts.proposed_owner),
        (Role.REQUESTER, facts.requester),
        (Role.APPROVER, facts.approvers),
    )
    held.update(role for role, members in checks if not keys.isdisjoint(members))
    return frozenset(held)


# The table: who may do each verb (before the checks that need more than a role).
_OWNERS = frozenset({Role.OWNER, Role.BACKUP})
_STEWARDS = _OWNERS | {Role.ADMIN}
ALLOWED: dict[Verb, frozenset[Role]] = {
    Verb.APPROVE: frozenset({Role.APPROVER, Role.ADMIN}),
    Verb.DENY: frozenset({Role.APPROVER, Role.ADMIN}),
    Verb.CANCEL: frozenset({Role.REQUESTER, Role.AGENT}),
    Verb.REVOKE: frozenset({Role.REQUESTER, Role.AGENT, Role.SYSTEM}) | _STEWARDS,
    Verb.EXTEND: frozenset({Role.REQUESTER, Role.AGENT}) | _OWNERS,
    Verb.QUARANTINE: _STEWARDS | {Role.SYSTEM},
    Verb.RELEASE: _STEWARDS | {Role.SYSTEM},
    Verb.RESTRICT: _STEWARDS | {Role.SYSTEM},
    Verb.UNRESTRICT: _STEWARDS | {Role.SYSTEM},
    Verb.KEEP: _STEWARDS,
    Verb.DISOWN: _OWNERS,
    Verb.OWNER_SET: frozenset({Role.OWNER, Role.ADMIN}),
    Verb.OWNER_CLAIM: frozenset({Role.ANYONE}),
    Verb.OWNER_CONFIRM: frozenset({Role.ADMIN}),
    Verb.ATTEST: _OWNERS,
    Verb.TOKEN_ISSUE: _STEWARDS,
    Verb.TOKEN_REVOKE: _STEWARDS,
    Verb.TOKEN_LIST: _STEWARDS,
    Verb.GUARDRAIL_APPLY: _STEWARDS | {Role.SYSTEM},
    Verb.GUARDRAIL_APPLY_ALL: frozenset({Role.ADMIN, Role.SYSTEM}),
    Verb.DIGEST: frozenset({Role.ADMIN, Role.SYSTEM}),
    Verb.SCAN: _STEWARDS | {Role.SYSTEM},
    Verb.SCAN_ALL: frozenset({Role.ADMIN, Role.SYSTEM}),
    Verb.SEE_REQUEST: frozenset({Role.REQUESTER, Role.APPROVER, Role.AGENT} | _STEWARDS),
}
# Approve and deny are refused to requesters and bots whatever else they are (an admin who
# asked included), and need a person Leash can tell apart: see _decider.
_DECIDERS = (Verb.APPROVE, Verb.DENY)


def decide(verb: Verb, subject: Subject, facts: Facts) -> Verdict:
    """Say whether the subject may `verb` the object described by `facts`, and why."""
    roles = roles_of(subject, facts)
    if verb in _DECIDERS:
        return _decider(verb, subject, facts, roles)
    if subject.kind is ActorKind.USER and Role.BOT in roles:
        return Verdict(False, f"Bots cannot {verb}.", roles)
    if not roles & ALLOWED[verb]:
        return Verdict(False, _refusal(verb, facts, roles), roles)
    lifting = verb in (Verb.RELEASE, Verb.UNRESTRICT) and facts.placed_as is not None
    if lifting and Role.SYSTEM not in roles:
        held = Rank.ADMIN if Role.ADMIN in roles else Rank.OWNER
        if held < (facts.placed_as or Rank.ADMIN):
            return Verdict(
                False,
                f"An admin placed this on {facts.identity_name}; only an admin can lift it.",
                roles,
            )
    allowed = sorted(role.value for role in roles & ALLOWED[verb])
    return Verdict(True, f"{verb}: allowed as {', '.join(allowed)}", roles)


def _decider(verb: Verb, subject: Subject, facts: Facts, roles: frozenset[Role]) -> Verdict:
    """Approve and deny: separation of duties first, then the listed approvers."""
    if subject.kind is not ActorKind.USER or Role.BOT in roles:
        return Verdict(False, "Agents and bots never approve requests.", roles)
    if Role.REQUESTER in roles:
        return Verdict(False, "You cannot approve or deny your own request.", roles)
    if not roles & ALLOWED[verb]:
        if Role.PROPOSED_OWNER in roles:
            return Verdict(
                False,
                f"Your claim on {facts.identity_name} is not confirmed yet: until an admin "
                "confirms it, you cannot approve or deny its requests.",
                roles,
            )
        listed = ", ".join(facts.approver_names) or "nobody"
        return Verdict(
            False, f"You are not an approver of this request (approvers: {listed}).", roles
        )
    if not subject.resolved:
        return Verdict(
            False,
            "Leash cannot tie your chat account to an e-mail or directory id, so it cannot tell "
            "you apart from the requester on another surface; ask an admin to fix your profile.",
            roles,
        )
    if not facts.requester_anchored and not _comparable(subject.keys, facts.requester):
        return Verdict(
            False,
            "The requester could not be tied to an e-mail, so only someone on the same chat "
            "platform as them can decide this request.",
            roles,
        )
    if verb is Verb.APPROVE and any(not subject.keys.isdisjoint(p) for p in facts.prior_approvals):
        return Verdict(
            False, "You have already approved this; it needs a different approver.", roles
        )
    reason = "admin" if Role.ADMIN in roles else "approver listed by the policy"
    return Verdict(True, reason, roles)


def _comparable(subject: frozenset[str], requester: frozenset[str]) -> bool:
    """Whether the subject has a handle in the namespace the requester is known by."""
    return not handles.namespaces(subject).isdisjoint(handles.namespaces(requester))


_PHRASES = {
    Verb.TOKEN_ISSUE: "issue its tokens",
    Verb.TOKEN_REVOKE: "revoke its tokens",
    Verb.TOKEN_LIST: "list its tokens",
    Verb.OWNER_SET: "change its owners",
    Verb.GUARDRAIL_APPLY: "apply its guardrail",
    Verb.SEE_REQUEST: "see its requests",
    Verb.EXTEND: "extend its grants",
    Verb.REVOKE: "revoke its grants",
    Verb.ATTEST: "confirm it as yours",
}


def _refusal(verb: Verb, facts: Facts, roles: frozenset[Role]) -> str:
    name = facts.identity_name
    if Role.OTHER_AGENT in roles:
        if verb is Verb.REVOKE:
            return "An agent token can release only its own grants."
        return f"An agent token can act only on its own identity, not on {name}."
    if Role.AGENT in roles:
        return f"Only people can {verb} {name}."
    if Role.PROPOSED_OWNER in roles and verb not in (Verb.OWNER_CONFIRM,):
        return (
            f"Your claim on {name} is waiting for an admin to confirm it; until then you "
            f"cannot {_PHRASES.get(verb, f'{verb} it')}."
        )
    sentences = {
        Verb.CANCEL: "Only the requester can cancel a request.",
        Verb.REVOKE: "Only the requester, the identity's owners or an admin can revoke a grant.",
        Verb.EXTEND: (
            f"Only the grant's requester, an owner of {name} or its agent can ask to extend it."
        ),
        Verb.KEEP: f"You are not an owner of {name}.",
        Verb.DISOWN: f"You are not an owner of {name}.",
        Verb.OWNER_SET: (
            f"{name} is owned by {facts.owner_name}; only they or an admin can change that."
        ),
        Verb.OWNER_CONFIRM: f"Only an admin can confirm a claim on {name}.",
        Verb.ATTEST: f"Only an owner of {name} can confirm it.",
        Verb.TOKEN_ISSUE: f"Only the owners of {name} or an admin can manage its tokens.",
        Verb.TOKEN_REVOKE: f"Only the owners of {name} or an admin can manage its tokens.",
        Verb.TOKEN_LIST: f"Only the owners of {name} or an admin can manage its tokens.",
        Verb.GUARDRAIL_APPLY_ALL: "Only an admin can apply guardrails to every agent.",
        Verb.DIGEST: "Only an admin can post a digest on demand.",
        Verb.SCAN_ALL: "Only an admin can scan everything; name an identity.",
        Verb.SEE_REQUEST: "You cannot see this request.",
    }
    what = {Verb.GUARDRAIL_APPLY: "guard", Verb.SCAN: "scan"}.get(verb, verb.value)
    return sentences.get(verb, f"Only an owner of {name} or an admin can {what} it.")
