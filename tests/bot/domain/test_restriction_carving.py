"""The restriction split around a grant: everything it denied stays denied but what the grant
approved, checked action by action against AWS's own action data."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from bot.domain.catalog import aws_actions
from bot.domain.restriction_carving import carve, opened, uncarvable
from cloud.base import Exemption

UNTIL = datetime(2030, 1, 1, tzinfo=UTC)
RUNNER = "arn:aws:iam::123456789012:role/svc-runner"


def _denies(patterns: tuple[str, ...], action: str) -> bool:
    def regex(pattern: str) -> re.Pattern[str]:
        parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
        return re.compile("".join(parts), re.IGNORECASE)

    return any(regex(p).fullmatch(action) for p in patterns)


@pytest.mark.parametrize(
    ("denied", "approved"),
    [
        (("iam:*",), "iam:PassRole"),
        (("iam:*", "s3:DeleteBucket"), "iam:PassRole"),
        (("iam:Pass*", "iam:Put*"), "iam:PassRole"),
        (("iam:*",), "iam:Get*"),
        (("iam:Get*",), "iam:GetRole"),
        (("s3:*",), "s3:GetObject"),
        (("bedrock:*",), "bedrock:InvokeModel"),
    ],
)
def test_the_split_deny_covers_everything_it_did_but_the_approved_part(
    denied: tuple[str, ...], approved: str
) -> None:
    carving = carve(denied, [Exemption(approved, UNTIL, "g1", (RUNNER,))])
    services = {p.partition(":")[0] for p in denied}
    for service in services:
        for action in aws_actions.actions_of(service):
            was = _denies(denied, action.action)
            exempted = _denies((approved,), action.action)
            assert _denies(carving.deny, action.action) == (was and not exempted), action.action
    assert [e.action for e in carving.exemptions] == list(opened(denied, [approved]))
    assert all(e.resources == (RUNNER,) and e.expires_at == UNTIL for e in carving.exemptions)


def test_what_the_grant_does_not_touch_is_left_exactly_as_it_was() -> None:
    denied = ("iam:*", "s3:DeleteBucket")
    assert carve(denied, [Exemption("ec2:StartInstances", UNTIL, "g1")]).deny == denied
    assert carve(denied, []).deny == denied
    assert opened(denied, ["ec2:StartInstances"]) == ()


def test_an_exact_denied_action_becomes_the_exemption_itself() -> None:
    carving = carve(("iam:PassRole", "iam:CreateUser"), [Exemption("iam:pass*", UNTIL, "g1")])
    assert carving.deny == ("iam:CreateUser",)
    assert [e.action for e in carving.exemptions] == ["iam:PassRole"]


def test_two_grants_of_the_same_action_each_get_an_exemption() -> None:
    carving = carve(
        ("iam:*",),
        [Exemption("iam:PassRole", UNTIL, "g1", (RUNNER,)), Exemption("iam:PassRole", UNTIL, "g2")],
    )
    assert [(e.action, e.grant_id) for e in carving.exemptions] == [
        ("iam:PassRole", "g1"),
        ("iam:PassRole", "g2"),
    ]


@pytest.mark.parametrize("approved", ["iam:*Role", "iam:Pass?ole"])
def test_an_overlap_that_no_prefix_can_express_is_refused(approved: str) -> None:
    assert uncarvable(("iam:Pass*",), [approved]) == (approved,)
    with pytest.raises(ValueError, match="cannot be let through"):
        carve(("iam:Pass*",), [Exemption(approved, UNTIL, "g1")])


def test_a_wider_grant_opens_the_whole_denied_pattern_it_covers() -> None:
    carving = carve(("iam:Pass*", "s3:DeleteBucket"), [Exemption("iam:*", UNTIL, "g1")])
    assert carving.deny == ("s3:DeleteBucket",)
    assert [e.action for e in carving.exemptions] == ["iam:Pass*"]


def test_a_grant_of_something_else_is_never_uncarvable() -> None:
    assert uncarvable(("iam:*",), ["s3:*", "ec2:Describe*"]) == ()
