"""The guardrail on the sandbox: the exact deny, self-expiring exemptions, dry runs, rewrites."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest

from cloud.aws.guardrail import guardrail, guardrail_document
from cloud.base import (
    CloudConflictError,
    CloudError,
    CloudLimitError,
    CloudNotFoundError,
    Exemption,
    GrantSpec,
    IdentityKind,
    IdentityRef,
)
from cloud.sandbox import Sandbox
from tests.cloud.aws_world import World, allow, filler, seeded_world, state

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

ROLE, USER = IdentityKind.ROLE, IdentityKind.USER
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
GUARDED = ("iam:PassRole", "iam:CreateAccessKey", "bedrock:UpdateFlow", "iam:PutUserPolicy")
ALL_DENIED = ["bedrock:UpdateFlow", "iam:CreateAccessKey", "iam:PassRole", "iam:PutUserPolicy"]
TAG_ACTIONS = ["iam:TagRole", "iam:TagUser", "iam:UntagRole", "iam:UntagUser"]
# IAM tag keys are case-insensitive, StringLike is not: every spelling of "leash:".
LEASH_KEYS = sorted(
    {
        "".join(c.upper() if (b >> i) & 1 else c for i, c in enumerate("leash")) + ":*"
        for b in range(32)
    }
)
PROTECT_TAGS = {
    "Sid": "LeashProtectLeashTags",
    "Effect": "Deny",
    "Action": TAG_ACTIONS,
    "Resource": "*",
    "Condition": {"ForAnyValue:StringLike": {"aws:TagKeys": LEASH_KEYS}},
}
LATER = datetime(2099, 1, 1, tzinfo=UTC)
# A catalogue as long as Leash's own: ~6,600 characters, over one managed policy's 6,144.
SERVICES = ("iam", "s3", "bedrock", "ec2", "kms", "lambda", "organizations", "sts")
CATALOGUE = tuple(f"{SERVICES[i % 8]}:PrivilegedOperation{i:03d}" for i in range(200))


@pytest.fixture(scope="module")
def world(sandbox_server: Sandbox) -> Iterator[World]:
    yield from seeded_world(sandbox_server)


def new_agent(world: World, kind: IdentityKind = ROLE, **extra: Any) -> IdentityRef:
    return world.create(kind, world.member, policies={"agent-access": allow(["s3:*"])}, **extra)


def document(*statements: dict[str, Any], agent: IdentityRef | None = None) -> dict[str, Any]:
    """The guardrail as written: for an identity, it also may not tag or untag itself."""
    own = (
        [
            {
                "Sid": "LeashProtectOwnTags",
                "Effect": "Deny",
                "Action": TAG_ACTIONS,
                "Resource": agent.native_id,
            }
        ]
        if agent
        else []
    )
    return {"Version": "2012-10-17", "Statement": [*statements, *own, PROTECT_TAGS]}


def main_deny(actions: list[str]) -> dict[str, Any]:
    return {"Sid": "LeashGuardrail", "Effect": "Deny", "Action": actions, "Resource": "*"}


def stored(world: World, agent: IdentityRef) -> Any:
    return state(world.iam(agent.account), agent)["inline"].get("leash-guardrail")


def chunk_arns(world: World, agent: IdentityRef) -> list[str]:
    """List the guardrail's managed policies for the agent, attached or not."""
    iam = world.iam(agent.account)
    found = iam.list_policies(Scope="Local", PathPrefix="/leash/")["Policies"]
    prefix = f"leash-guardrail-{agent.name}-"
    return sorted(p["Arn"] for p in found if p["PolicyName"].startswith(prefix))


def versions(iam: IAMClient, arns: list[str]) -> dict[str, list[Any]]:
    return {arn: iam.list_policy_versions(PolicyArn=arn)["Versions"] for arn in arns}


def compact_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


async def test_the_guardrail_is_exact_and_an_exemption_denies_again_at_its_expiry(
    world: World,
) -> None:
    agent = new_agent(world)
    iam = world.iam(agent.account)
    in_two_hours = (NOW + timedelta(hours=2)).astimezone(timezone(timedelta(hours=5)))
    exemptions = [
        Exemption("iam:PassRole", in_two_hours, "grant-7f3a"),
        Exemption("bedrock:UpdateFlow", NOW - timedelta(minutes=1), "g-old"),  # expired
        Exemption("s3:GetObject", NOW + timedelta(hours=1), "g-other"),  # not guarded
    ]

    change = guardrail(iam, agent, GUARDED, exemptions, now=NOW)

    expected = document(
        main_deny(["bedrock:UpdateFlow", "iam:CreateAccessKey", "iam:PutUserPolicy"]),
        {
            "Sid": "LeashGuardrailAftergrant7f3a",
            "Effect": "Deny",
            "Action": ["iam:PassRole"],
            "Resource": "*",
            "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T14:00:00Z"}},
        },
        agent=agent,
    )
    assert stored(world, agent) == expected
    assert (change.before, change.mechanism, change.changed) == (None, "inline", True)
    assert json.loads(change.after) == expected
    assert change.after == json.dumps(expected, separators=(",", ":"))

    folded = guardrail(iam, agent, GUARDED, exemptions, now=NOW + timedelta(hours=3))

    assert stored(world, agent) == document(main_deny(ALL_DENIED), agent=agent)
    assert folded.before == change.after


async def test_a_dry_run_writes_nothing(world: World) -> None:
    agent = new_agent(world)
    before = state(world.iam(agent.account), agent)
    provider = world.provider()

    change = await provider.guardrail(agent, GUARDED, dry_run=True)

    assert (change.before, change.changed) == (None, True)
    assert json.loads(change.after) == document(main_deny(ALL_DENIED), agent=agent)
    assert state(world.iam(agent.account), agent) == before

    written = await provider.guardrail(agent, GUARDED)
    preview = await provider.guardrail(agent, ["iam:PassRole"], dry_run=True)

    assert preview.before == written.after
    assert json.loads(preview.after) == document(main_deny(["iam:PassRole"]), agent=agent)
    assert stored(world, agent) == document(main_deny(ALL_DENIED), agent=agent)


async def test_rewriting_with_the_same_inputs_changes_nothing(world: World) -> None:
    agent = new_agent(world, USER)
    exemptions = [Exemption("iam:CreateAccessKey", LATER, "g1")]
    first = await world.provider().guardrail(agent, GUARDED, exemptions)

    # The same inputs in another order, through a provider that may not write at all.
    again = await world.failing_provider("PutUserPolicy").guardrail(
        agent, tuple(reversed(GUARDED)), exemptions
    )

    assert (again.before, again.after, again.changed) == (first.after, first.after, False)
    assert stored(world, agent) == json.loads(first.after)


def test_exemptions_are_per_action_and_the_longest_wins() -> None:
    exemptions = [
        Exemption("iam:PassRole", NOW + timedelta(hours=1), "a-1"),
        Exemption("iam:PassRole", NOW + timedelta(hours=4), "a1"),  # lasts longer: wins
        Exemption("iam:CreateAccessKey", NOW + timedelta(hours=1), "a-1"),
        Exemption("IAM:putuserpolicy", NOW + timedelta(hours=1), "a-1"),
    ]

    built = guardrail_document(GUARDED, exemptions, now=NOW)

    def after(sid: str, actions: list[str], expiry: str) -> dict[str, Any]:
        condition = {"DateGreaterThan": {"aws:CurrentTime": expiry}}
        return {
            "Sid": sid,
            "Effect": "Deny",
            "Action": actions,
            "Resource": "*",
            "Condition": condition,
        }

    assert built == document(
        main_deny(["bedrock:UpdateFlow"]),
        after("LeashGuardrailAftera1", ["iam:CreateAccessKey"], "2030-01-01T13:00:00Z"),
        after("LeashGuardrailAftera12", ["iam:PassRole"], "2030-01-01T16:00:00Z"),
        after("LeashGuardrailAftera13", ["iam:PutUserPolicy"], "2030-01-01T13:00:00Z"),
    )
    with pytest.raises(CloudError, match="naive"):
        guardrail_document(GUARDED, [Exemption("iam:PassRole", datetime(2030, 1, 1), "g")], now=NOW)


async def test_a_role_with_a_full_inline_budget_gets_a_managed_guardrail(world: World) -> None:
    agent = world.create(ROLE, world.member, policies={"big": filler(10_240 - 100)})
    iam = world.iam(agent.account)

    change = await world.provider().guardrail(agent, GUARDED)

    (arn,) = chunk_arns(world, agent)
    assert arn.endswith(f":policy/leash/leash-guardrail-{agent.name}-1")
    assert (change.mechanism, stored(world, agent)) == ("managed:1", None)
    assert state(iam, agent)["attached"] == {arn: document(main_deny(ALL_DENIED), agent=agent)}
    assert json.loads(change.after) == [document(main_deny(ALL_DENIED), agent=agent)]


async def test_a_missing_identity_is_not_found(world: World) -> None:
    ghost = IdentityRef("aws", world.member, "arn:aws:iam::1:role/ghost", "ghost", ROLE)
    with pytest.raises(CloudNotFoundError, match="ghost"):
        await world.provider().guardrail(ghost, GUARDED, dry_run=True)


async def test_a_user_gets_the_guardrail_as_managed_chunks_that_deny_exactly_the_catalogue(
    world: World,
) -> None:
    agent = new_agent(world, USER)
    iam = world.iam(agent.account)
    in_two_hours = (NOW + timedelta(hours=2)).astimezone(timezone(timedelta(hours=5)))
    exempted = CATALOGUE[7]
    exemptions = [Exemption(exempted, in_two_hours, "grant-9c1")]
    assert compact_size(guardrail_document(CATALOGUE, exemptions, now=NOW)) > 6_144

    change = guardrail(iam, agent, tuple(reversed(CATALOGUE)), exemptions, now=NOW)

    arns = chunk_arns(world, agent)
    assert [arn.rsplit("/", 2)[1:] for arn in arns] == [
        ["leash", f"leash-guardrail-{agent.name}-{n}"] for n in (1, 2)
    ]
    written = state(iam, agent)
    assert sorted(written["attached"]) == arns
    assert "leash-guardrail" not in written["inline"]
    chunks = [written["attached"][arn] for arn in arns]
    assert (change.mechanism, change.before, json.loads(change.after)) == (
        "managed:2",
        None,
        chunks,
    )
    assert all(compact_size(chunk) <= 6_144 for chunk in chunks)
    statements = [statement for chunk in chunks for statement in chunk["Statement"]]
    for chunk in chunks:
        sids = [statement["Sid"] for statement in chunk["Statement"]]
        assert len(sids) == len(set(sids))
    main = [a for s in statements if s["Sid"] == "LeashGuardrail" for a in s["Action"]]
    assert sorted(main) == sorted(set(CATALOGUE) - {exempted})
    assert len(main) == len(CATALOGUE) - 1
    after = [s for s in statements if s["Sid"].startswith("LeashGuardrailAfter")]
    assert after == [
        {
            "Sid": "LeashGuardrailAftergrant9c1",
            "Effect": "Deny",
            "Action": [exempted],
            "Resource": "*",
            "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T14:00:00Z"}},
        }
    ]
    assert [s for s in statements if s["Sid"] == "LeashProtectLeashTags"] == [PROTECT_TAGS]


async def test_rewriting_managed_chunks_changes_nothing_then_updates_them_in_place(
    world: World,
) -> None:
    agent = new_agent(world, USER)
    iam = world.iam(agent.account)
    exemptions = [Exemption(CATALOGUE[3], LATER, "g1")]
    first = await world.provider().guardrail(agent, CATALOGUE, exemptions)
    arns = chunk_arns(world, agent)
    before = versions(iam, arns)

    # The same inputs in another order, through a provider that may not write a version.
    again = await world.failing_provider("CreatePolicyVersion").guardrail(
        agent, tuple(reversed(CATALOGUE)), exemptions
    )

    assert (again.before, again.after, again.changed) == (first.after, first.after, False)
    assert versions(iam, arns) == before

    untouched = 0
    for step in range(6):  # more rewrites than IAM keeps versions of one policy
        documents, kept = state(iam, agent)["attached"], versions(iam, arns)
        grants = [Exemption(CATALOGUE[3 + step % 2], LATER, f"g{step + 2}")]
        last = await world.provider().guardrail(agent, CATALOGUE, grants)
        assert last.changed
        for arn in arns:  # a new version exactly where the document changed
            same = state(iam, agent)["attached"][arn] == documents[arn]
            assert (versions(iam, [arn])[arn] == kept[arn]) == same
            untouched += same
    assert untouched

    assert chunk_arns(world, agent) == arns
    assert json.loads(last.after) == [state(iam, agent)["attached"][arn] for arn in arns]
    for found in versions(iam, arns).values():
        assert [v["IsDefaultVersion"] for v in found] == [True]


async def test_fewer_actions_move_the_guardrail_inline_and_delete_the_chunks(
    world: World,
) -> None:
    agent = new_agent(world, USER)
    iam = world.iam(agent.account)
    small = await world.provider().guardrail(agent, GUARDED)
    calls: list[str] = []

    def session() -> Any:
        base = world.sandbox.session()
        base.events.register("before-call.iam.*", lambda model, **_: calls.append(model.name))
        return base

    managed = await world.provider(session).guardrail(agent, CATALOGUE)
    arns = chunk_arns(world, agent)

    assert (managed.before, managed.mechanism, stored(world, agent)) == (
        small.after,
        "managed:2",
        None,
    )
    assert len(arns) == 2
    # The chunks are attached before the inline guardrail goes.
    assert calls.index("DeleteUserPolicy") > max(
        i for i, c in enumerate(calls) if c == "AttachUserPolicy"
    )

    calls.clear()
    back = await world.provider(session).guardrail(agent, GUARDED)

    assert (back.before, back.after, back.mechanism) == (managed.after, small.after, "inline")
    assert stored(world, agent) == document(main_deny(ALL_DENIED), agent=agent)
    assert state(iam, agent)["attached"] == {}
    assert chunk_arns(world, agent) == []
    assert calls.index("PutUserPolicy") < calls.index("DetachUserPolicy")


async def test_a_managed_dry_run_writes_nothing(world: World) -> None:
    agent = new_agent(world, USER)
    iam = world.iam(agent.account)
    await world.provider().guardrail(agent, GUARDED)
    before = state(iam, agent)

    change = await world.provider().guardrail(agent, CATALOGUE, dry_run=True)

    assert (change.mechanism, change.changed) == ("managed:2", True)
    assert state(iam, agent) == before
    assert chunk_arns(world, agent) == []


async def test_no_room_for_managed_chunks_is_refused_and_a_failed_attach_is_undone(
    world: World,
) -> None:
    full = new_agent(world, USER, managed=[f"s3:GetObject{n}" for n in range(9)])
    before = state(world.iam(full.account), full)

    with pytest.raises(CloudLimitError, match="9 others are attached") as caught:
        await world.provider().guardrail(full, CATALOGUE)

    assert caught.value.code == "AttachedPolicyLimit"
    assert state(world.iam(full.account), full) == before
    assert chunk_arns(world, full) == []

    agent = new_agent(world, USER)
    await world.provider().guardrail(agent, GUARDED)
    guarded = state(world.iam(agent.account), agent)

    with pytest.raises(CloudLimitError, match="AttachUserPolicy"):
        await world.failing_provider("AttachUserPolicy").guardrail(agent, CATALOGUE)

    assert state(world.iam(agent.account), agent) == guarded
    assert chunk_arns(world, agent) == []


async def test_a_role_and_a_user_of_one_name_do_not_share_chunks(world: World) -> None:
    user = new_agent(world, USER)
    await world.provider().guardrail(user, CATALOGUE)
    role = world.create(ROLE, world.member, name=user.name, policies={"big": filler(10_140)})
    before = state(world.iam(role.account), role)

    with pytest.raises(CloudConflictError, match="attached to other identities"):
        await world.provider().guardrail(role, CATALOGUE)

    assert state(world.iam(role.account), role) == before


async def test_a_user_grant_over_2048_characters_is_refused_before_any_write(
    world: World,
) -> None:
    agent = new_agent(world, USER)
    actions = tuple(f"s3:GetObjectVersion{n:03d}" for n in range(80))
    spec = GrantSpec("g-big", actions, ("arn:aws:s3:::reports/*",), LATER)
    before = state(world.iam(agent.account), agent)

    # A write would be refused with another code: the budget must stop the grant first.
    with pytest.raises(CloudLimitError, match="budget of 2048") as caught:
        await world.failing_provider("PutUserPolicy", code="Unexpected").grant(agent, spec)

    assert caught.value.code == "InlinePolicyBudget"
    assert state(world.iam(agent.account), agent) == before
    role = new_agent(world, ROLE)
    assert (await world.provider().grant(role, spec)).artefact == "leash-grant-g-big"
