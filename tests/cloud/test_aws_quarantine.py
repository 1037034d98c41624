"""Quarantine and release on the sandbox: deny everything, then give back exactly what was there."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from cloud.aws.quarantine import tag_value
from cloud.base import (
    CloudConflictError,
    CloudError,
    CloudNotFoundError,
    IdentityKind,
    IdentityRef,
)
from cloud.sandbox import Sandbox
from tests.cloud.aws_world import (
    World,
    allow,
    filler,
    leash_policies,
    released,
    seeded_world,
    sessions_policy,
    state,
)

ROLE, USER = IdentityKind.ROLE, IdentityKind.USER
AT = datetime(2030, 5, 1, 12, 30, 15, tzinfo=timezone(timedelta(hours=2)))
AT_TEXT = "2030-05-01T10:30:15Z"
REASON = "Inactive 200 days; owner <alice@example.com> said so!"
REASON_TAG_VALUE = "Inactive 200 days owner alice@example.com said so"
QUARANTINE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "LeashQuarantineDenyAll", "Effect": "Deny", "Action": "*", "Resource": "*"},
        {
            "Sid": "LeashRevokeOlderSessions",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": AT_TEXT}},
        },
    ],
}
NOT_QUARANTINED = {
    "kind": "aws-quarantine",
    "mechanism": "inline",
    "policy_arn": None,
    "quarantined_at": AT_TEXT,
    "previous_tags": {"leash:quarantined": None, "leash:quarantine-reason": None},
}


@pytest.fixture(scope="module")
def world(sandbox_server: Sandbox) -> Iterator[World]:
    yield from seeded_world(sandbox_server)


def new_agent(world: World, kind: IdentityKind, account: str, **extra: Any) -> IdentityRef:
    return world.create(
        kind,
        account,
        policies={"agent-access": allow(["s3:GetObject", "bedrock:InvokeModel"])},
        managed=["sqs:SendMessage"],
        **extra,
    )


def quarantine_arn(agent: IdentityRef) -> str:
    return f"arn:aws:iam::{agent.account}:policy/leash/leash-quarantine-{agent.name}"


@pytest.mark.parametrize(
    ("kind", "in_member", "earlier_tags"),
    [
        pytest.param(ROLE, True, {}, id="role-in-member-account"),
        pytest.param(USER, False, {}, id="user"),
        pytest.param(
            ROLE,
            False,
            {"leash:quarantined": "2029-01-01T00:00:00Z", "zz-last": "kept"},
            id="role-tagged-before",
        ),
        pytest.param(
            USER,
            True,
            {"leash:quarantined": "earlier", "leash:quarantine-reason": "an earlier reason"},
            id="user-tagged-before",
        ),
    ],
)
async def test_quarantine_denies_everything_and_release_restores_byte_for_byte(
    world: World, kind: IdentityKind, in_member: bool, earlier_tags: dict[str, str]
) -> None:
    account = world.member if in_member else world.management
    agent = new_agent(world, kind, account, tags={"team": "ml"} | earlier_tags)
    iam = world.iam(account)
    before = state(iam, agent)
    provider = world.provider()

    snapshot = await provider.quarantine(agent, at=AT, reason=REASON)

    quarantined = state(iam, agent)
    assert quarantined["inline"] == before["inline"] | {"leash-quarantine": QUARANTINE_POLICY}
    assert quarantined["attached"] == before["attached"]
    assert quarantined["tags"] == before["tags"] | {
        "leash:quarantined": AT_TEXT,
        "leash:quarantine-reason": REASON_TAG_VALUE,
    }
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["mechanism"] == "inline"
    assert snapshot["previous_tags"] == {
        "leash:quarantined": earlier_tags.get("leash:quarantined"),
        "leash:quarantine-reason": earlier_tags.get("leash:quarantine-reason"),
    }

    assert await provider.release(agent, snapshot) is True
    # Everything as before, but sessions issued before the quarantine stay denied.
    assert state(iam, agent) == released(before, AT_TEXT)


@pytest.mark.parametrize("kind", [ROLE, USER])
async def test_a_full_inline_budget_quarantines_through_a_managed_policy(
    world: World, kind: IdentityKind
) -> None:
    budget = 10_240 if kind is ROLE else 2_048
    agent = world.create(kind, world.management, policies={"big": filler(budget - 100)})
    iam = world.iam(world.management)
    before = state(iam, agent)
    provider = world.provider()

    snapshot = await provider.quarantine(agent, at=AT, reason="zombie")

    quarantined = state(iam, agent)
    assert quarantined["inline"] == before["inline"]
    assert quarantined["attached"] == {quarantine_arn(agent): QUARANTINE_POLICY}
    assert (snapshot["mechanism"], snapshot["policy_arn"]) == ("managed", quarantine_arn(agent))
    with pytest.raises(CloudConflictError, match="already quarantined"):
        await provider.quarantine(agent, at=AT, reason="again")

    assert await provider.release(agent, snapshot) is True
    # No inline room: the lasting old-sessions deny is a /leash/ managed policy.
    after = state(iam, agent)
    (sessions_arn,) = leash_policies(iam, agent)
    assert sessions_arn.endswith(f"leash-revoked-sessions-{agent.name}")
    assert after == before | {"attached": {sessions_arn: sessions_policy(AT_TEXT)}}


async def test_quarantining_twice_is_a_conflict_and_changes_nothing(world: World) -> None:
    agent = new_agent(world, ROLE, world.member)
    iam = world.iam(world.member)
    provider = world.provider()
    await provider.quarantine(agent, at=AT, reason="first")
    quarantined = state(iam, agent)

    with pytest.raises(CloudConflictError, match=f"{agent.name}.*already quarantined") as caught:
        await provider.quarantine(agent, at=AT + timedelta(hours=1), reason="second")

    assert caught.value.code == "AlreadyQuarantined"
    assert state(iam, agent) == quarantined


async def test_release_of_an_identity_not_quarantined_changes_nothing(world: World) -> None:
    agent = new_agent(world, USER, world.management, tags={"leash:quarantined": "by hand"})
    iam = world.iam(world.management)
    before = state(iam, agent)
    provider = world.provider()

    assert await provider.release(agent, NOT_QUARANTINED) is False
    assert state(iam, agent) == before

    snapshot = await provider.quarantine(agent, at=AT, reason="r")
    assert await provider.release(agent, snapshot) is True
    assert await provider.release(agent, snapshot) is False
    assert state(iam, agent) == released(before, AT_TEXT)


async def test_a_failed_tag_write_takes_the_deny_back(world: World) -> None:
    agent = new_agent(world, ROLE, world.management)
    iam = world.iam(world.management)
    before = state(iam, agent)

    with pytest.raises(CloudError, match="TagRole"):
        await world.failing_provider("TagRole").quarantine(agent, at=AT, reason="r")

    assert state(iam, agent) == before


async def test_a_failed_release_leaves_the_identity_quarantined(world: World) -> None:
    agent = new_agent(world, ROLE, world.management, tags={"leash:quarantined": "before"})
    iam = world.iam(world.management)
    provider = world.provider()
    snapshot = await provider.quarantine(agent, at=AT, reason="r")
    quarantined = state(iam, agent)

    with pytest.raises(CloudError, match="DeleteRolePolicy"):
        await world.failing_provider("DeleteRolePolicy").release(agent, snapshot)

    # Still quarantined; the old-sessions deny, written first, may stay (it only denies).
    after = state(iam, agent)
    after["inline"].pop("leash-revoked-sessions", None)
    assert after == quarantined


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        pytest.param(REASON, REASON_TAG_VALUE, id="punctuation"),
        pytest.param("a_b.c:d/e=f+g-h@i", "a_b.c:d/e=f+g-h@i", id="allowed-symbols"),
        pytest.param("Zoë  \t naïve ☃", "Zoë naïve", id="unicode"),
        pytest.param("x" * 300, "x" * 256, id="too-long"),
        pytest.param("y" * 255 + " z", "y" * 255, id="no-trailing-space"),
        pytest.param("<>", "", id="nothing-left"),
    ],
)
def test_the_reason_is_fitted_to_iam_tag_values(reason: str, expected: str) -> None:
    assert tag_value(reason) == expected


async def test_a_naive_time_or_missing_identity_is_refused(world: World) -> None:
    agent = new_agent(world, ROLE, world.management)
    before = state(world.iam(world.management), agent)
    provider = world.provider()

    with pytest.raises(CloudError, match="timezone-aware") as caught:
        await provider.quarantine(agent, at=datetime(2030, 1, 1), reason="r")
    assert caught.value.code == "BadInput"
    assert state(world.iam(world.management), agent) == before

    ghost = IdentityRef("aws", agent.account, "arn:aws:iam::1:user/ghost", "ghost", USER)
    with pytest.raises(CloudNotFoundError, match="ghost"):
        await provider.quarantine(ghost, at=AT, reason="r")
    with pytest.raises(CloudNotFoundError, match="ghost"):
        await provider.release(ghost, NOT_QUARANTINED)
