"""The independent IAM evaluator is itself right on the cases the document tests rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.iam_evaluation import Decision, Request, evaluate

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
RUNNER = "arn:aws:iam::111122223333:role/svc-runner"
ADMIN_ROLE = "arn:aws:iam::111122223333:role/OrganizationAccountAccessRole"
ALLOW = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}],
}


def test_explicit_deny_wins_and_nothing_allowed_is_an_implicit_deny() -> None:
    deny = {"Statement": {"Effect": "Deny", "Action": "IAM:passrole", "Resource": "*"}}
    assert evaluate([ALLOW, deny], Request("iam:PassRole", RUNNER, NOW)) is Decision.EXPLICIT_DENY
    assert evaluate([deny], Request("s3:GetObject", "*", NOW)) is Decision.IMPLICIT_DENY
    assert evaluate([ALLOW], Request("iam:PassRole", RUNNER, NOW)) is Decision.ALLOW


def test_not_resource_and_time_conditions() -> None:
    until = (NOW + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    documents: list[dict[str, Any]] = [
        ALLOW,
        {"Statement": [{"Effect": "Deny", "Action": ["iam:PassRole"], "NotResource": [RUNNER]}]},
        {
            "Statement": [
                {
                    "Effect": "Deny",
                    "Action": ["iam:PassRole"],
                    "Resource": [RUNNER],
                    "Condition": {"DateGreaterThan": {"aws:CurrentTime": until}},
                }
            ]
        },
    ]
    assert evaluate(documents, Request("iam:PassRole", RUNNER, NOW)) is Decision.ALLOW
    assert evaluate(documents, Request("iam:PassRole", ADMIN_ROLE, NOW)) is Decision.EXPLICIT_DENY
    later = NOW + timedelta(hours=2)
    assert evaluate(documents, Request("iam:PassRole", RUNNER, later)) is Decision.EXPLICIT_DENY


def test_tag_keys_match_case_sensitively_as_string_like_does() -> None:
    deny = {
        "Statement": {
            "Effect": "Deny",
            "Action": "iam:UntagRole",
            "Resource": "*",
            "Condition": {"ForAnyValue:StringLike": {"aws:TagKeys": "leash:*"}},
        }
    }
    lower = Request("iam:UntagRole", RUNNER, NOW, tag_keys=("leash:agent",))
    upper = Request("iam:UntagRole", RUNNER, NOW, tag_keys=("LEASH:AGENT",))
    assert evaluate([ALLOW, deny], lower) is Decision.EXPLICIT_DENY
    assert evaluate([ALLOW, deny], upper) is Decision.ALLOW  # the bypass the review found


def test_token_issue_time_revokes_older_sessions_only() -> None:
    cut = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    deny = {
        "Statement": {
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": cut}},
        }
    }
    old = Request("iam:ListRoles", "*", NOW, token_issue_time=NOW - timedelta(minutes=5))
    new = Request("iam:ListRoles", "*", NOW, token_issue_time=NOW + timedelta(minutes=5))
    assert evaluate([ALLOW, deny], old) is Decision.EXPLICIT_DENY
    assert evaluate([ALLOW, deny], new) is Decision.ALLOW
