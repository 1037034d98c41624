"""The built-in Azure roles Leash deals with, with their real GUIDs, actions and data actions."""

from __future__ import annotations

from cloud.sandbox.azure.state import RoleDefinition

OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
STORAGE_BLOB_DATA_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
COGNITIVE_SERVICES_OPENAI_USER = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
MANAGED_IDENTITY_OPERATOR = "f1a07417-d97a-45cb-824c-7a7467783830"
RBAC_ADMINISTRATOR = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"

_BLOBS = "Microsoft.Storage/storageAccounts/blobServices"
_OPENAI = "Microsoft.CognitiveServices/accounts/OpenAI"

BUILT_IN_ROLES = (
    RoleDefinition(
        OWNER,
        "Owner",
        "Grants full access to manage all resources, including the ability to assign roles in "
        "Azure RBAC.",
        actions=("*",),
    ),
    RoleDefinition(
        CONTRIBUTOR,
        "Contributor",
        "Grants full access to manage all resources, but does not allow you to assign roles in "
        "Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
        actions=("*",),
        not_actions=(
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Blueprint/blueprintAssignments/write",
            "Microsoft.Blueprint/blueprintAssignments/delete",
            "Microsoft.Compute/galleries/share/action",
            "Microsoft.Purview/consents/write",
            "Microsoft.Purview/consents/delete",
            "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
            "Microsoft.Subscription/cancel/action",
            "Microsoft.Subscription/enable/action",
        ),
    ),
    RoleDefinition(
        READER,
        "Reader",
        "View all resources, but does not allow you to make any changes.",
        actions=("*/read",),
    ),
    RoleDefinition(
        USER_ACCESS_ADMINISTRATOR,
        "User Access Administrator",
        "Lets you manage user access to Azure resources.",
        actions=("*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"),
    ),
    RoleDefinition(
        STORAGE_BLOB_DATA_READER,
        "Storage Blob Data Reader",
        "Allows for read access to Azure Storage blob containers and data",
        actions=(f"{_BLOBS}/containers/read", f"{_BLOBS}/generateUserDelegationKey/action"),
        data_actions=(f"{_BLOBS}/containers/blobs/read",),
    ),
    RoleDefinition(
        STORAGE_BLOB_DATA_CONTRIBUTOR,
        "Storage Blob Data Contributor",
        "Allows for read, write and delete access to Azure Storage blob containers and data",
        actions=(
            f"{_BLOBS}/containers/delete",
            f"{_BLOBS}/containers/read",
            f"{_BLOBS}/containers/write",
            f"{_BLOBS}/generateUserDelegationKey/action",
        ),
        data_actions=(
            f"{_BLOBS}/containers/blobs/delete",
            f"{_BLOBS}/containers/blobs/read",
            f"{_BLOBS}/containers/blobs/write",
            f"{_BLOBS}/containers/blobs/move/action",
            f"{_BLOBS}/containers/blobs/add/action",
        ),
    ),
    RoleDefinition(
        COGNITIVE_SERVICES_OPENAI_USER,
        "Cognitive Services OpenAI User",
        "Ability to view files, models, deployments. Readers can't make any changes They can "
        "inference and create images",
        actions=(
            "Microsoft.CognitiveServices/*/read",
            "Microsoft.Authorization/roleAssignments/read",
            "Microsoft.Authorization/roleDefinitions/read",
        ),
        data_actions=(
            f"{_OPENAI}/*/read",
            f"{_OPENAI}/engines/completions/action",
            f"{_OPENAI}/engines/search/action",
            f"{_OPENAI}/engines/generate/action",
            f"{_OPENAI}/deployments/audio/action",
            f"{_OPENAI}/deployments/search/action",
            f"{_OPENAI}/deployments/completions/action",
            f"{_OPENAI}/deployments/chat/completions/action",
            f"{_OPENAI}/deployments/realtime/action",
            f"{_OPENAI}/deployments/extensions/chat/completions/action",
            f"{_OPENAI}/deployments/embeddings/action",
            f"{_OPENAI}/images/generations/action",
            f"{_OPENAI}/assistants/*",
        ),
        not_data_actions=(f"{_OPENAI}/stored-completions/read",),
    ),
    RoleDefinition(
        KEY_VAULT_SECRETS_USER,
        "Key Vault Secrets User",
        "Read secret contents. Only works for key vaults that use the 'Azure role-based access "
        "control' permission model.",
        actions=(),
        data_actions=(
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ),
    ),
    RoleDefinition(
        MANAGED_IDENTITY_OPERATOR,
        "Managed Identity Operator",
        "Read and Assign User Assigned Identity",
        actions=(
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
            "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Support/*",
        ),
    ),
    RoleDefinition(
        RBAC_ADMINISTRATOR,
        "Role Based Access Control Administrator",
        "Manage access to Azure resources by assigning roles using Azure RBAC. This role does not "
        "allow you to manage access using other ways, such as Azure Policy.",
        actions=(
            "Microsoft.Authorization/roleAssignments/write",
            "Microsoft.Authorization/roleAssignments/delete",
            "*/read",
            "Microsoft.Support/*",
        ),
    ),
)

VIRTUAL_MACHINE_CONTRIBUTOR = "9980e02c-c2be-4d73-94e8-173b1dc7cf3c"
AUTOMATION_CONTRIBUTOR = "f353d9bd-d4a6-484e-a77a-8050b599b867"
TAG_CONTRIBUTOR = "4a9ae827-6dc8-4573-8ac7-8239d42aa03f"
KEY_VAULT_CONTRIBUTOR = "f25e0fa2-a7c8-4377-a976-54943a77a395"
MANAGED_IDENTITY_CONTRIBUTOR = "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59"
_IDENTITIES = "Microsoft.ManagedIdentity/userAssignedIdentities"
# What most built-in "... Contributor" roles carry besides their own resource provider.
_COMMON = (
    "Microsoft.Authorization/*/read",
    "Microsoft.Insights/alertRules/*",
    "Microsoft.Resources/deployments/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Support/*",
)

# Roles that run code as another identity or rewrite what Leash reads (the guardrail's
# targets), with the actions of Microsoft's definitions that matter here.
CODE_AND_TAG_ROLES = (
    RoleDefinition(
        VIRTUAL_MACHINE_CONTRIBUTOR,
        "Virtual Machine Contributor",
        "Create and manage virtual machines, manage disks, install and run software, reset "
        "password of the root user of the virtual machine using VM extensions, and manage local "
        "user accounts using VM extensions.",
        actions=(
            *_COMMON,
            "Microsoft.Compute/availabilitySets/*",
            "Microsoft.Compute/locations/*",
            "Microsoft.Compute/virtualMachines/*",
            "Microsoft.Compute/virtualMachineScaleSets/*",
            "Microsoft.Compute/disks/write",
            "Microsoft.Compute/disks/read",
            "Microsoft.Compute/disks/delete",
            "Microsoft.Storage/storageAccounts/listKeys/action",
            "Microsoft.Storage/storageAccounts/read",
        ),
    ),
    RoleDefinition(
        AUTOMATION_CONTRIBUTOR,
        "Automation Contributor",
        "Manage Azure Automation resources and other resources using Azure Automation.",
        actions=(
            "Microsoft.Automation/automationAccounts/*",
            "Microsoft.Authorization/*/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Support/*",
            "Microsoft.Insights/ActionGroups/*",
            "Microsoft.Insights/ActivityLogAlerts/*",
            "Microsoft.Insights/MetricAlerts/*",
            "Microsoft.Insights/ScheduledQueryRules/*",
            "Microsoft.Insights/diagnosticSettings/*",
            "Microsoft.OperationalInsights/workspaces/sharedKeys/action",
        ),
    ),
    RoleDefinition(
        TAG_CONTRIBUTOR,
        "Tag Contributor",
        "Lets you manage tags on entities, without providing access to the entities themselves.",
        actions=(
            *_COMMON,
            "Microsoft.Resources/subscriptions/resourceGroups/resources/read",
            "Microsoft.Resources/subscriptions/resources/read",
            "Microsoft.Resources/tags/*",
        ),
    ),
    RoleDefinition(
        KEY_VAULT_CONTRIBUTOR,
        "Key Vault Contributor",
        "Manage key vaults, but does not allow you to assign roles in Azure RBAC, and does not "
        "allow you to access secrets, keys, or certificates.",
        actions=(*_COMMON, "Microsoft.KeyVault/*"),
        not_actions=(
            "Microsoft.KeyVault/locations/deletedVaults/purge/action",
            "Microsoft.KeyVault/hsmPools/*",
            "Microsoft.KeyVault/managedHsms/*",
        ),
    ),
    RoleDefinition(
        MANAGED_IDENTITY_CONTRIBUTOR,
        "Managed Identity Contributor",
        "Create, Read, Update, and Delete User Assigned Identity",
        actions=(
            f"{_IDENTITIES}/read",
            f"{_IDENTITIES}/write",
            f"{_IDENTITIES}/delete",
            f"{_IDENTITIES}/federatedIdentityCredentials/read",
            f"{_IDENTITIES}/federatedIdentityCredentials/write",
            f"{_IDENTITIES}/federatedIdentityCredentials/delete",
            *_COMMON,
        ),
    ),
)
