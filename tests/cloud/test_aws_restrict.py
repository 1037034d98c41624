"""Restrict and unrestrict on the sandbox: the exact deny, IAM's size limits, an exact undo."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cloud.aws.restriction import denied_patterns
from cloud.base import (
    CloudConflictError,
    CloudError,
    CloudLimitError,
    CloudNotFoundError,
    GrantSpec,
    IdentityKind,
    IdentityRef,
)
from cloud.sandbox import Sandbox
from tests.cloud.aws_world import (
    World,
    allow,
    filler,
    leash_policies,
    put_policy,
    seeded_world,
    state,
)

ROLE, USER = IdentityKind.ROLE, IdentityKind.USER
AGENT_ACTIONS = ["s3:GetObject", "s3:PutObject", "dynamodb:GetItem", "dynamodb:PutItem"]


@pytest.fixture(scope="module")
def world(sandbox_server: Sandbox) -> Iterator[World]:
    yield from seeded_world(sandbox_server)


def deny(*actions: str) -> dict[str, Any]:
    statement = {"Sid": "LeashRestrictUnused", "Effect": "Deny", "Action": list(actions)}
    return {"Version": "2012-10-17", "Statement": [statement | {"Resource": "*"}]}


def compact(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


def managed_arn(agent: IdentityRef) -> str:
    return f"arn:aws:iam::{agent.account}:policy/leash/leash-restrict-{agent.name}"


def filled(kind: IdentityKind, policies: dict[str, str], *, spare: int = 50) -> dict[str, str]:
    """`policies` plus `big`, which leaves only `spare` characters of the inline budget."""
    budget = 10_240 if kind is ROLE else 2_048
    used = sum(len(compact(json.loads(document))) for document in policies.values())
    return policies | {"big": filler(budget - used - spare)}


def new_agent(world: World, kind: IdentityKind, account: str, **extra: Any) -> IdentityRef:
    return world.create(kind, account, policies={"agent-access": allow(AGENT_ACTIONS)}, **extra)


@pytest.mark.parametrize(
    ("kind", "in_member"),
    [pytest.param(ROLE, True, id="role-in-member-account"), pytest.param(USER, False, id="user")],
)
async def test_restrict_denies_exactly_the_unused_and_unrestrict_restores(
    world: World, kind: IdentityKind, in_member: bool
) -> None:
    account = world.member if in_member else world.management
    agent = new_agent(world, kind, account, managed=["sqs:SendMessage"], tags={"team": "ml"})
    iam = world.iam(account)
    before = state(iam, agent)
    provider = world.provider()

    plan = await provider.plan_restrict(
        agent,
        unused=["s3:PutObject", "dynamodb:*", "sqs:SendMessage", "s3:PutObject"],
        keep=["s3:GetObject", "dynamodb:GetItem"],
    )
    assert plan.deny == ("s3:PutObject", "sqs:SendMessage")
    assert (plan.mechanism, plan.coarsened) == ("inline", False)
    assert plan.document == compact(deny("s3:PutObject", "sqs:SendMessage"))

    snapshot = await provider.restrict(agent, plan)

    restricted = state(iam, agent)
    assert restricted["inline"] == before["inline"] | {
        "leash-restrict": deny("s3:PutObject", "sqs:SendMessage")
    }
    assert restricted["attached"] == before["attached"]
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert (snapshot["mechanism"], snapshot["previous_document"]) == ("inline", None)

    assert await provider.unrestrict(agent, snapshot) is True
    assert state(iam, agent) == before
    assert await provider.unrestrict(agent, snapshot) is False
    assert state(iam, agent) == before


@pytest.mark.parametrize("new_mechanism", ["inline", "managed"])
async def test_restrict_replaces_an_earlier_restriction_and_unrestrict_puts_it_back(
    world: World, new_mechanism: str
) -> None:
    earlier = compact(deny("ec2:RunInstances"))
    # Room for the earlier deny, but not for the longer new one when it must go managed.
    spare = len(earlier) + (5 if new_mechanism == "managed" else 500)
    agent = world.create(
        ROLE,
        world.management,
        policies=filled(ROLE, {"agent-access": allow(AGENT_ACTIONS)}, spare=spare)
        | {"leash-restrict": earlier},
    )
    iam = world.iam(world.management)
    before = state(iam, agent)
    provider = world.provider()

    plan = await provider.plan_restrict(agent, ["s3:PutObject", "dynamodb:PutItem"], [])
    assert plan.mechanism == new_mechanism
    snapshot = await provider.restrict(agent, plan)

    restricted = state(iam, agent)
    wanted = deny("dynamodb:PutItem", "s3:PutObject")
    if new_mechanism == "inline":
        assert restricted["inline"]["leash-restrict"] == wanted
    else:
        assert "leash-restrict" not in restricted["inline"]
        assert restricted["attached"] == {managed_arn(agent): wanted}
    assert snapshot["previous_document"] == earlier

    assert await provider.unrestrict(agent, snapshot) is True
    assert state(iam, agent) == before
    assert leash_policies(iam, agent) == []


@pytest.mark.parametrize(
    ("unused", "keep", "denied"),
    [
        pytest.param(["s3:GetObject"], ["s3:Get*"], (), id="kept-by-wildcard"),
        pytest.param(["s3:*"], ["s3:GetObject"], (), id="wildcard-would-deny-kept"),
        pytest.param(["S3:getobject"], ["s3:GetObject"], (), id="case-insensitive"),
        pytest.param(["s3:Get?bject"], ["s3:GetObject"], (), id="question-mark"),
        pytest.param(["s3:*Object"], ["s3:Get*"], (), id="two-wildcards-meet"),
        pytest.param(["s3:List*"], ["s3:Get*"], ("s3:List*",), id="wildcards-apart"),
        pytest.param(["s3:Put*"], ["s3:*"], (), id="service-used"),
        pytest.param(
            ["iam:PassRole", "iam:CreateUser", "iam:passrole"],
            ["s3:GetObject"],
            ("iam:CreateUser", "iam:PassRole"),
            id="sorted-deduplicated",
        ),
    ],
)
def test_used_and_unknown_actions_are_never_denied(
    unused: list[str], keep: list[str], denied: tuple[str, ...]
) -> None:
    assert denied_patterns(unused, keep) == denied


async def test_nothing_left_to_deny_is_refused(world: World) -> None:
    agent = new_agent(world, ROLE, world.management)
    provider = world.provider()

    with pytest.raises(CloudError, match=agent.name) as caught:
        await provider.plan_restrict(agent, ["s3:GetObject", "s3:*"], ["s3:GetObject"])
    assert caught.value.code == "NothingToRestrict"
    with pytest.raises(CloudError, match="not IAM action patterns") as bad:
        await provider.plan_restrict(agent, ["GetObject"], [])
    assert bad.value.code == "BadAction"


@pytest.mark.parametrize("kind", [ROLE, USER])
async def test_a_full_inline_budget_falls_back_to_a_managed_policy(
    world: World, kind: IdentityKind
) -> None:
    agent = world.create(
        kind, world.management, policies=filled(kind, {"agent-access": allow(AGENT_ACTIONS)})
    )
    iam = world.iam(world.management)
    before = state(iam, agent)
    provider = world.provider()

    plan = await provider.plan_restrict(agent, ["s3:PutObject", "dynamodb:PutItem"], [])
    assert (plan.mechanism, plan.coarsened) == ("managed", False)
    snapshot = await provider.restrict(agent, plan)

    restricted = state(iam, agent)
    assert restricted["inline"] == before["inline"]
    assert restricted["attached"] == {managed_arn(agent): deny("dynamodb:PutItem", "s3:PutObject")}
    assert snapshot["policy_arn"] == managed_arn(agent)

    assert await provider.unrestrict(agent, snapshot) is True
    assert state(iam, agent) == before
    assert leash_policies(iam, agent) == []


KEPT = ("ec2:DescribeInstances", "s3:GetObject", "rds:ListTagsForResource")
VERBS = ("Get", "List", "Describe", "Put", "Delete", "Create", "Update")
MANY_UNUSED = [
    f"{service}:{verb}Resource{number:02d}"
    for service in ("ec2", "rds", "s3")
    for verb in VERBS
    for number in range(40)
]


def matches(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


async def test_too_big_for_a_managed_policy_is_coarsened_sparing_the_kept(world: World) -> None:
    agent = world.create(ROLE, world.management, policies=filled(ROLE, {}))
    iam = world.iam(world.management)
    provider = world.provider()
    assert len(compact(deny(*MANY_UNUSED))) > 6_144

    plan = await provider.plan_restrict(agent, MANY_UNUSED, KEPT)

    assert (plan.mechanism, plan.coarsened) == ("managed", True)
    assert len(plan.document) <= 6_144
    assert plan == await provider.plan_restrict(agent, MANY_UNUSED, KEPT)
    assert not [(p, k) for p in plan.deny for k in KEPT if matches(p, k)]
    assert all(any(matches(p, action) for p in plan.deny) for action in MANY_UNUSED)
    wildcards = [p for p in plan.deny if "*" in p]
    assert wildcards
    assert all(p.removesuffix("*").split(":")[1] in VERBS for p in wildcards)
    assert "ec2:Describe*" not in plan.deny
    assert "ec2:DescribeResource07" in plan.deny

    snapshot = await provider.restrict(agent, plan)
    assert state(iam, agent)["attached"] == {managed_arn(agent): json.loads(plan.document)}
    assert await provider.unrestrict(agent, snapshot) is True


async def test_a_deny_that_cannot_fit_is_a_limit_error_and_writes_nothing(world: World) -> None:
    agent = world.create(ROLE, world.management, policies=filled(ROLE, {}))
    iam = world.iam(world.management)
    before = state(iam, agent)
    unused = [f"ec2:DescribeThing{number:03d}" for number in range(400)]

    with pytest.raises(CloudLimitError, match=r"6144") as caught:
        await world.provider().plan_restrict(agent, unused, ["ec2:DescribeInstances"])

    assert agent.name in str(caught.value)
    assert state(iam, agent) == before
    assert leash_policies(iam, agent) == []


def change_inline(world: World, agent: IdentityRef) -> None:
    put_policy(world.iam(agent.account), agent, "agent-access", allow(["s3:*"]))


def add_inline(world: World, agent: IdentityRef) -> None:
    put_policy(world.iam(agent.account), agent, "extra", allow(["sqs:SendMessage"]))


def attach_managed(world: World, agent: IdentityRef) -> None:
    iam = world.iam(agent.account)
    arn = iam.create_policy(PolicyName=f"{agent.name}-more", PolicyDocument=allow(["sns:*"]))[
        "Policy"
    ]["Arn"]
    iam.attach_role_policy(RoleName=agent.name, PolicyArn=arn)


def new_managed_version(world: World, agent: IdentityRef) -> None:
    iam = world.iam(agent.account)
    (arn,) = state(iam, agent)["attached"]
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=allow(["sqs:*"]), SetAsDefault=True)


@pytest.mark.parametrize(
    "change",
    [change_inline, add_inline, attach_managed, new_managed_version],
    ids=lambda c: c.__name__,
)
async def test_a_change_between_plan_and_restrict_is_a_conflict(world: World, change: Any) -> None:
    agent = new_agent(world, ROLE, world.member, managed=["sqs:SendMessage"])
    provider = world.provider()
    plan = await provider.plan_restrict(agent, ["s3:PutObject"], ["s3:GetObject"])
    change(world, agent)
    changed = state(world.iam(agent.account), agent)

    with pytest.raises(CloudConflictError, match="changed since the preview"):
        await provider.restrict(agent, plan)

    assert state(world.iam(agent.account), agent) == changed


async def test_a_grant_between_plan_and_restrict_is_no_conflict(world: World) -> None:
    agent = new_agent(world, ROLE, world.member)
    provider = world.provider()
    plan = await provider.plan_restrict(agent, ["s3:PutObject"], ["s3:GetObject"])
    expiry = datetime.now(UTC) + timedelta(hours=1)
    await provider.grant(agent, GrantSpec("g1", ("sqs:SendMessage",), (), expiry))

    await provider.restrict(agent, plan)

    assert "leash-restrict" in state(world.iam(agent.account), agent)["inline"]


async def test_a_failed_attach_undoes_the_created_policy(world: World) -> None:
    agent = world.create(ROLE, world.management, policies=filled(ROLE, {}))
    iam = world.iam(world.management)
    before = state(iam, agent)
    plan = await world.provider().plan_restrict(agent, ["s3:PutObject"], [])
    assert plan.mechanism == "managed"

    with pytest.raises(CloudLimitError, match="AttachRolePolicy"):
        await world.failing_provider("AttachRolePolicy").restrict(agent, plan)

    assert state(iam, agent) == before
    assert leash_policies(iam, agent) == []


async def test_a_failed_switch_to_managed_keeps_the_earlier_restriction(world: World) -> None:
    earlier = compact(deny("ec2:RunInstances"))
    agent = world.create(
        ROLE,
        world.management,
        policies=filled(ROLE, {}, spare=len(earlier) + 5) | {"leash-restrict": earlier},
    )
    iam = world.iam(world.management)
    before = state(iam, agent)
    plan = await world.provider().plan_restrict(agent, ["s3:PutObject", "s3:DeleteObject"], [])
    assert plan.mechanism == "managed"

    with pytest.raises(CloudError, match="DeleteRolePolicy"):
        await world.failing_provider("DeleteRolePolicy", code="ServiceFailure").restrict(
            agent, plan
        )

    assert state(iam, agent) == before
    assert leash_policies(iam, agent) == []


async def test_a_failed_unrestrict_leaves_the_restriction_in_place(world: World) -> None:
    earlier = compact(deny("ec2:RunInstances"))
    agent = world.create(
        ROLE,
        world.management,
        policies=filled(ROLE, {}, spare=len(earlier) + 5) | {"leash-restrict": earlier},
    )
    iam = world.iam(world.management)
    provider = world.provider()
    plan = await provider.plan_restrict(agent, ["s3:PutObject", "s3:DeleteObject"], [])
    snapshot = await provider.restrict(agent, plan)
    restricted = state(iam, agent)

    with pytest.raises(CloudError, match="DetachRolePolicy"):
        await world.failing_provider("DetachRolePolicy").unrestrict(agent, snapshot)

    assert state(iam, agent) == restricted
    assert await provider.unrestrict(agent, snapshot) is True
    assert state(iam, agent)["inline"]["leash-restrict"] == json.loads(earlier)


async def test_a_managed_restriction_shared_by_name_is_refused(world: World) -> None:
    role = world.create(ROLE, world.management, policies=filled(ROLE, {}))
    user = world.create(USER, world.management, policies=filled(USER, {}), name=role.name)
    iam = world.iam(world.management)
    provider = world.provider()
    await provider.restrict(role, await provider.plan_restrict(role, ["s3:PutObject"], []))
    plan = await provider.plan_restrict(user, ["s3:DeleteObject"], [])
    assert plan.mechanism == "managed"
    before = (state(iam, role), state(iam, user))

    with pytest.raises(CloudConflictError, match="attached to other identities") as caught:
        await provider.restrict(user, plan)

    assert caught.value.code == "SharedLeashPolicy"
    assert (state(iam, role), state(iam, user)) == before


async def test_a_missing_identity_is_not_found(world: World) -> None:
    ghost = IdentityRef(
        "aws", world.management, f"arn:aws:iam::{world.management}:role/ghost", "ghost", ROLE
    )
    provider = world.provider()
    with pytest.raises(CloudNotFoundError, match="ghost"):
        await provider.plan_restrict(ghost, ["s3:PutObject"], [])
    snapshot = {"kind": "aws-restrict", "mechanism": "inline", "document": "{}"}
    with pytest.raises(CloudNotFoundError, match="ghost"):
        await provider.unrestrict(ghost, snapshot)


async def test_a_plan_applies_only_to_its_own_identity(world: World) -> None:
    first = new_agent(world, ROLE, world.management)
    second = new_agent(world, ROLE, world.management)
    provider = world.provider()
    plan = await provider.plan_restrict(first, ["s3:PutObject"], [])

    with pytest.raises(CloudError, match="cannot be applied") as caught:
        await provider.restrict(second, plan)

    assert caught.value.code == "PlanMismatch"
    assert "leash-restrict" not in state(world.iam(world.management), second)["inline"]
