"""The authority table: every verb against every kind of subject, and one person, two handles."""

from __future__ import annotations

import pytest

from bot.domain import handles
from bot.domain.actors import Actor
from bot.domain.authority import ALLOWED, Facts, Rank, Role, Subject, Verb, decide, people
from bot.domain.handles import HandleKind
from bot.domain.states import ActorKind

IDENTITY = "i-agent"
OTHER_IDENTITY = "i-other"

# The cast: how each is known to Leash.
REQUESTER = Actor("UDEV", ActorKind.USER, "slack", aliases=("dev@example.com",))
OWNER = Actor("alice@example.com", ActorKind.USER, "teams")
BACKUP = Actor("UBOB", ActorKind.USER, "slack", aliases=("bob@example.com",))
PROPOSED = Actor("mallory", ActorKind.USER, "console")
ADMIN = Actor("secops@example.com", ActorKind.USER, "teams")
BOT = Actor("UDEPLOYBOT", ActorKind.USER, "slack", aliases=("deploy-bot@example.com",))
AGENT = Actor(IDENTITY, ActorKind.AGENT, "api")
OTHER_AGENT = Actor(OTHER_IDENTITY, ActorKind.AGENT, "api")
STRANGER = Actor("UEVE", ActorKind.USER, "slack", aliases=("eve@example.com",))
SYSTEM = Actor("leash", ActorKind.SYSTEM, "scheduler")

FACTS = Facts(
    identity_name="agent-x",
    identity_id=IDENTITY,
    # The policy and the inventory name people in their own case and by any handle.
    admins=people(["SecOps@Example.com"]),
    bots=people(["deploy-bot@example.com"]),
    owner=people(["Alice@Example.COM"]),
    backup=people(["UBOB"]),
    proposed_owner=people(["mallory"]),
    requester=frozenset(REQUESTER.keys),
    approvers=people(["Alice@Example.COM", "UBOB", "SecOps@Example.com"]),
    approver_names=("Alice@Example.COM", "UBOB", "SecOps@Example.com"),
    placed_as=Rank.OWNER,
)

CAST = {
    "requester": REQUESTER,
    "owner": OWNER,
    "backup": BACKUP,
    "proposed-owner": PROPOSED,
    "admin": ADMIN,
    "bot": BOT,
    "agent-token": AGENT,
    "other-agent-token": OTHER_AGENT,
    "stranger": STRANGER,
}

Y, N = True, False
# One row per verb: may requester, owner, backup, proposed owner, admin, bot, the identity's
# agent token, another agent's token, a stranger?
TABLE: dict[Verb, tuple[bool, ...]] = {
    #                         req  own  bak  prop adm  bot  agt  oagt str
    Verb.APPROVE: (N, Y, Y, N, Y, N, N, N, N),
    Verb.DENY: (N, Y, Y, N, Y, N, N, N, N),
    Verb.CANCEL: (Y, N, N, N, N, N, Y, N, N),
    Verb.REVOKE: (Y, Y, Y, N, Y, N, Y, N, N),
    Verb.EXTEND: (Y, Y, Y, N, N, N, Y, N, N),
    Verb.QUARANTINE: (N, Y, Y, N, Y, N, N, N, N),
    Verb.RELEASE: (N, Y, Y, N, Y, N, N, N, N),
    Verb.RESTRICT: (N, Y, Y, N, Y, N, N, N, N),
    Verb.UNRESTRICT: (N, Y, Y, N, Y, N, N, N, N),
    Verb.KEEP: (N, Y, Y, N, Y, N, N, N, N),
    Verb.DISOWN: (N, Y, Y, N, N, N, N, N, N),
    Verb.OWNER_SET: (N, Y, N, N, Y, N, N, N, N),
    Verb.OWNER_CLAIM: (Y, Y, Y, Y, Y, N, N, N, Y),
    Verb.OWNER_CONFIRM: (N, N, N, N, Y, N, N, N, N),
    Verb.ATTEST: (N, Y, Y, N, N, N, N, N, N),
    Verb.TOKEN_ISSUE: (N, Y, Y, N, Y, N, N, N, N),
    Verb.TOKEN_REVOKE: (N, Y, Y, N, Y, N, N, N, N),
    Verb.TOKEN_LIST: (N, Y, Y, N, Y, N, N, N, N),
    Verb.GUARDRAIL_APPLY: (N, Y, Y, N, Y, N, N, N, N),
    Verb.GUARDRAIL_APPLY_ALL: (N, N, N, N, Y, N, N, N, N),
    Verb.DIGEST: (N, N, N, N, Y, N, N, N, N),
    Verb.SCAN: (N, Y, Y, N, Y, N, N, N, N),
    Verb.SCAN_ALL: (N, N, N, N, Y, N, N, N, N),
    Verb.SEE_REQUEST: (Y, Y, Y, N, Y, N, Y, N, N),
}


def test_the_table_covers_every_verb() -> None:
    assert set(TABLE) == set(Verb) == set(ALLOWED)


@pytest.mark.parametrize(
    ("verb", "who", "allowed"),
    [
        pytest.param(verb, who, row[column], id=f"{verb.value.replace(' ', '-')}-by-{who}")
        for verb, row in TABLE.items()
        for column, who in enumerate(CAST)
    ],
)
def test_every_verb_against_every_subject(verb: Verb, who: str, allowed: bool) -> None:
    verdict = decide(verb, Subject.of(CAST[who]), FACTS)
    assert verdict.allowed is allowed, verdict.reason
    assert verdict.reason  # a refusal always says why, an allowance what it rests on


def test_leash_itself_may_do_its_scheduled_work_but_never_decide() -> None:
    subject = Subject.of(SYSTEM)
    for verb in (Verb.REVOKE, Verb.QUARANTINE, Verb.SCAN_ALL, Verb.DIGEST, Verb.RELEASE):
        assert decide(verb, subject, FACTS).allowed, verb
    for verb in (Verb.APPROVE, Verb.DENY, Verb.OWNER_CONFIRM, Verb.TOKEN_ISSUE):
        assert not decide(verb, subject, FACTS).allowed, verb


# The same person under two handles


def test_the_requester_under_their_teams_email_is_still_the_requester() -> None:
    # UDEV asked on Slack (e-mail dev@example.com); the same person clicks in Teams.
    on_teams = Actor("DEV@example.com", ActorKind.USER, "teams", aliases=("29:dev",))
    facts = Facts(
        identity_id=IDENTITY,
        admins=people(["dev@example.com"]),
        requester=frozenset(REQUESTER.keys),
        approvers=people(["dev@example.com"]),
    )
    verdict = decide(Verb.APPROVE, Subject.of(on_teams), facts)
    assert verdict == decide(Verb.APPROVE, Subject.of(REQUESTER), facts)
    assert verdict.reason == "You cannot approve or deny your own request."


def test_break_glass_counts_persons_not_handles() -> None:
    slack_admin = Actor("U0ADMIN", ActorKind.USER, "slack", aliases=("secops@example.com",))
    # As Leash's person directory resolves them: the Teams sender shares the e-mail, so it
    # knows every handle of that person, the Slack id included.
    teams_admin = Actor("SecOps@example.com", ActorKind.USER, "teams").with_person(
        "p-1", slack_admin.keys
    )
    facts = Facts(
        identity_id=IDENTITY,
        admins=people(["U0ADMIN"]),
        owner=people(["alice@example.com"]),
        requester=frozenset(REQUESTER.keys),
        approvers=people(["alice@example.com", "U0ADMIN"]),
        prior_approvals=(frozenset(slack_admin.keys),),
    )
    refused = decide(Verb.APPROVE, Subject.of(teams_admin), facts)
    assert refused.reason == "You have already approved this; it needs a different approver."
    assert decide(Verb.APPROVE, Subject.of(OWNER), facts).allowed


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        pytest.param("Carol.Owner@Example.TEST", HandleKind.EMAIL, id="email-case"),
        pytest.param(" carol.owner@example.test ", HandleKind.EMAIL, id="email-spaces"),
        pytest.param("\uff23arol.owner@example.test", HandleKind.EMAIL, id="email-fullwidth"),
        pytest.param("u0admin", HandleKind.NAME, id="lower-case-is-not-a-slack-id"),
        pytest.param("U0ADMIN", HandleKind.SLACK, id="slack-id"),
        pytest.param("6F1C8A9E-1B2C-4D3E-8F90-0A1B2C3D4E5F", HandleKind.ENTRA, id="entra-guid"),
        pytest.param("29:1abcDEF", HandleKind.TEAMS, id="teams-id"),
        pytest.param("SecOps", HandleKind.NAME, id="console-name"),
    ],
)
def test_names_become_one_canonical_key(name: str, kind: HandleKind) -> None:
    key = handles.key_for_name(name)
    assert handles.kind_of(key) is kind
    if kind is HandleKind.EMAIL:
        assert key == "email:carol.owner@example.test"
    if kind is HandleKind.ENTRA:
        assert key == "entra:6f1c8a9e-1b2c-4d3e-8f90-0a1b2c3d4e5f"


# Checks beyond the role


def test_an_unresolved_chat_account_never_decides() -> None:
    no_email = Subject.of(Actor("UBOB", ActorKind.USER, "slack"))
    unresolved = Subject(keys=no_email.keys, kind=ActorKind.USER, resolved=False)
    verdict = decide(Verb.APPROVE, unresolved, FACTS)
    assert not verdict.allowed
    assert "cannot tie your chat account" in verdict.reason


def test_a_requester_known_only_by_a_slack_id_is_decided_on_slack_only() -> None:
    facts = Facts(
        identity_id=IDENTITY,
        requester=frozenset({"slack:UDEV"}),
        requester_anchored=False,
        approvers=people(["alice@example.com", "UBOB"]),
    )
    on_teams = decide(Verb.APPROVE, Subject.of(OWNER), facts)
    assert not on_teams.allowed
    assert "same chat platform" in on_teams.reason
    assert decide(Verb.APPROVE, Subject.of(BACKUP), facts).allowed  # BACKUP is on Slack


def test_a_proposed_owner_hears_why_they_cannot_approve() -> None:
    verdict = decide(Verb.APPROVE, Subject.of(PROPOSED), FACTS)
    assert verdict.reason.startswith("Your claim on agent-x is not confirmed yet")


@pytest.mark.parametrize("verb", [Verb.RELEASE, Verb.UNRESTRICT])
def test_lifting_needs_the_authority_it_was_placed_with(verb: Verb) -> None:
    by_admin = Facts(
        identity_name="agent-x",
        identity_id=IDENTITY,
        admins=FACTS.admins,
        owner=FACTS.owner,
        placed_as=Rank.ADMIN,
    )
    refused = decide(verb, Subject.of(OWNER), by_admin)
    assert refused.reason == "An admin placed this on agent-x; only an admin can lift it."
    assert decide(verb, Subject.of(ADMIN), by_admin).allowed
    assert decide(verb, Subject.of(OWNER), FACTS).allowed  # an owner's own quarantine


def test_an_admin_who_asked_does_not_approve() -> None:
    facts = Facts(
        identity_id=IDENTITY,
        admins=FACTS.admins,
        requester=frozenset(ADMIN.keys),
        approvers=FACTS.approvers,
    )
    verdict = decide(Verb.APPROVE, Subject.of(ADMIN), facts)
    assert verdict.reason == "You cannot approve or deny your own request."
    assert Role.ADMIN in verdict.roles


def test_a_stranger_is_told_who_may_approve() -> None:
    verdict = decide(Verb.APPROVE, Subject.of(STRANGER), FACTS)
    assert verdict.reason == (
        "You are not an approver of this request "
        "(approvers: Alice@Example.COM, UBOB, SecOps@Example.com)."
    )
