"""The sandbox AWS refuses inline policies past IAM's aggregate budget, as IAM does."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from cloud.base import IdentityKind
from cloud.sandbox import Sandbox
from tests.cloud.aws_world import World, filler, seeded_world

ROLE, USER = IdentityKind.ROLE, IdentityKind.USER


@pytest.fixture(scope="module")
def world(sandbox_server: Sandbox) -> Iterator[World]:
    yield from seeded_world(sandbox_server)


@pytest.mark.parametrize(("kind", "budget"), [(ROLE, 10_240), (USER, 2_048)])
def test_a_put_past_the_aggregate_budget_is_limit_exceeded(
    world: World, kind: IdentityKind, budget: int
) -> None:
    agent = world.create(kind, world.member, policies={"big": filler(budget - 300)})
    iam = world.iam(agent.account)
    put = iam.put_role_policy if kind is ROLE else iam.put_user_policy
    name_key = "RoleName" if kind is ROLE else "UserName"
    small = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Deny", "Action": "a:b", "Resource": "*"}],
        }
    )
    put(**{name_key: agent.name}, PolicyName="fits", PolicyDocument=small)  # within the budget
    with pytest.raises(ClientError) as refused:
        put(**{name_key: agent.name}, PolicyName="too-much", PolicyDocument=filler(400))
    assert refused.value.response["Error"]["Code"] == "LimitExceeded"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    # Replacing a policy counts its new size, not both.
    put(**{name_key: agent.name}, PolicyName="big", PolicyDocument=filler(budget - 400))
