"""The guardrail on the sandbox: the exact deny, self-expiring exemptions, dry runs, rewrites."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from cloud.aws.guardrail import guardrail, guardrail_document
from cloud.base import (
    CloudError,
    CloudLimitError,
    CloudNotFoundError,
    Exemption,
    IdentityKind,
    IdentityRef,
)
from cloud.sandbox import Sandbox
from tests.cloud.aws_world import World, allow, filler, seeded_world, state

ROLE, USER = IdentityKind.ROLE, IdentityKind.USER
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
GUARDED = ("iam:PassRole", "iam:CreateAccessKey", "bedrock:UpdateFlow", "iam:PutUserPolicy")
ALL_DENIED = ["bedrock:UpdateFlow", "iam:CreateAccessKey", "iam:PassRole", "iam:PutUserPolicy"]
PROTECT_TAGS = {
    "Sid": "LeashProtectLeashTags",
    "Effect": "Deny",
    "Action": ["iam:TagRole", "iam:TagUser", "iam:UntagRole", "iam:UntagUser"],
    "Resource": "*",
    "Condition": {"ForAnyValue:StringLike": {"aws:TagKeys": "leash:*"}},
}
LATER = datetime(2099, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(sandbox_server: Sandbox) -> Iterator[World]:
    yield from seeded_world(sandbox_server)


def new_agent(world: World, kind: IdentityKind = ROLE, **extra: Any) -> IdentityRef:
    return world.create(kind, world.member, policies={"agent-access": allow(["s3:*"])}, **extra)


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [*statements, PROTECT_TAGS]}


def main_deny(actions: list[str]) -> dict[str, Any]:
    return {"Sid": "LeashGuardrail", "Effect": "Deny", "Action": actions, "Resource": "*"}


def stored(world: World, agent: IdentityRef) -> Any:
    return state(world.iam(agent.account), agent)["inline"].get("leash-guardrail")


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
    )
    assert stored(world, agent) == expected
    assert (change.before, change.mechanism, change.changed) == (None, "inline", True)
    assert json.loads(change.after) == expected
    assert change.after == json.dumps(expected, separators=(",", ":"))

    folded = guardrail(iam, agent, GUARDED, exemptions, now=NOW + timedelta(hours=3))

    assert stored(world, agent) == document(main_deny(ALL_DENIED))
    assert folded.before == change.after


async def test_a_dry_run_writes_nothing(world: World) -> None:
    agent = new_agent(world)
    before = state(world.iam(agent.account), agent)
    provider = world.provider()

    change = await provider.guardrail(agent, GUARDED, dry_run=True)

    assert (change.before, change.changed) == (None, True)
    assert json.loads(change.after) == document(main_deny(ALL_DENIED))
    assert state(world.iam(agent.account), agent) == before

    written = await provider.guardrail(agent, GUARDED)
    preview = await provider.guardrail(agent, ["iam:PassRole"], dry_run=True)

    assert preview.before == written.after
    assert json.loads(preview.after) == document(main_deny(["iam:PassRole"]))
    assert stored(world, agent) == document(main_deny(ALL_DENIED))


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


def test_exemptions_per_grant_are_grouped_and_the_longest_wins() -> None:
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
        after(
            "LeashGuardrailAftera1",
            ["iam:CreateAccessKey", "iam:PutUserPolicy"],
            "2030-01-01T13:00:00Z",
        ),
        after("LeashGuardrailAftera12", ["iam:PassRole"], "2030-01-01T16:00:00Z"),
    )
    with pytest.raises(CloudError, match="naive"):
        guardrail_document(GUARDED, [Exemption("iam:PassRole", datetime(2030, 1, 1), "g")], now=NOW)


async def test_a_guardrail_over_the_inline_budget_is_refused_and_nothing_is_written(
    world: World,
) -> None:
    agent = world.create(ROLE, world.member, policies={"big": filler(10_240 - 100)})
    before = state(world.iam(agent.account), agent)
    size = len(json.dumps(guardrail_document(GUARDED, [], now=NOW), separators=(",", ":")))

    with pytest.raises(CloudLimitError, match=agent.name) as caught:
        await world.provider().guardrail(agent, GUARDED)

    over = re.search(r"(\d+) characters over the AWS budget of 10240", str(caught.value))
    assert over is not None
    assert int(over.group(1)) == 10_140 + size - 10_240
    assert state(world.iam(agent.account), agent) == before


async def test_a_missing_identity_is_not_found(world: World) -> None:
    ghost = IdentityRef("aws", world.member, "arn:aws:iam::1:role/ghost", "ghost", ROLE)
    with pytest.raises(CloudNotFoundError, match="ghost"):
        await world.provider().guardrail(ghost, GUARDED, dry_run=True)
