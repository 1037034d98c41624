"""A grant costs one write: Leash composes it from its own record and reads only when IAM
refuses it (issue 17, "one round trip in the common case")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cloud.base import CloudLimitError, GrantSpec, IdentityKind
from cloud.sandbox import Sandbox
from tests.cloud.aws_world import World, filler, seeded_world, state

ROLE = IdentityKind.ROLE
READS = ("Get", "List")


@pytest.fixture(scope="module")
def world(sandbox_server: Sandbox) -> Iterator[World]:
    yield from seeded_world(sandbox_server)


def _leash_iam_calls(world: World, since: int) -> list[str]:
    return [
        call.operation
        for call in world.sandbox.moto.calls()[since:]
        if call.by_leash and call.service == "iam"
    ]


def _spec(grant_id: str) -> GrantSpec:
    expires = datetime.now(UTC) + timedelta(minutes=10)
    return GrantSpec(grant_id, ("s3:GetObject",), ("arn:aws:s3:::reports/*",), expires)


async def test_a_grant_is_one_put_and_no_read(world: World) -> None:
    agent = world.create(ROLE, world.member, policies={"agent-access": filler(500)})
    provider = world.provider()
    mark = len(world.sandbox.moto.calls())
    applied = await provider.grant(agent, _spec("g-onetrip1"))
    assert applied.artefact == "leash-grant-g-onetrip1"
    assert _leash_iam_calls(world, mark) == ["PutRolePolicy"]


async def test_a_grant_iam_refuses_for_the_budget_is_explained_and_nothing_is_left(
    world: World,
) -> None:
    agent = world.create(ROLE, world.member, policies={"big": filler(10_240 - 150)})
    iam = world.iam(agent.account)
    before = state(iam, agent)
    mark = len(world.sandbox.moto.calls())
    with pytest.raises(CloudLimitError, match="over the AWS budget of 10240") as caught:
        await world.provider().grant(agent, _spec("g-onetrip2"))
    assert caught.value.code == "InlinePolicyBudget"
    calls = _leash_iam_calls(world, mark)
    assert calls[0] == "PutRolePolicy"  # the write first; the reads only to explain it
    assert all(c.startswith(READS) for c in calls[1:])
    assert state(iam, agent) == before
