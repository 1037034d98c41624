"""Azure operations a role is tiered on, whatever the role is called, grouped by who says so.

Operation names are Microsoft's, as the resource provider operations reference spells them
(https://learn.microsoft.com/azure/role-based-access-control/resource-provider-operations);
Azure compares them case-insensitively and so does Leash. Each operation is listed once, in
one category, under the source that explains why it is there:

- microsoft-rbac: Microsoft's own account of what manages access: the privileged
  administrator roles and their actions
  (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles#privileged),
  elevating a Global Administrator
  (https://learn.microsoft.com/azure/role-based-access-control/elevate-access-global-admin),
  PIM requests and policies, and Azure Policy assignments and exemptions (an assignment with a
  managed identity deploys and modifies resources as that identity).
- microsoft-key-vault: a vault's access policies sit outside RBAC, so whoever writes them (or
  the vault) can give itself every secret, key and certificate
  (https://learn.microsoft.com/azure/key-vault/general/rbac-guide, "Key Vault Contributor").
- managed-identity-attack-paths: running code of one's choosing as some other identity, from
  SpecterOps' "Managed Identity Attack Paths" parts 1-3 (Automation accounts, Logic Apps,
  Function Apps; https://posts.specterops.io/managed-identity-attack-paths-part-1-automation-accounts-82667d17187a),
  NetSPI's "Azure Privilege Escalation Using Managed Identities"
  (https://www.netspi.com/blog/technical-blog/cloud-pentesting/azure-privilege-escalation-using-managed-identities/)
  and Microsoft's Azure Threat Research Matrix (virtual machine and serverless scripting;
  https://microsoft.github.io/Azure-Threat-Research-Matrix/), with Stratus Red Team's Azure
  techniques (https://stratus-red-team.cloud/attack-techniques/azure/).
- netspi-get-azpasswords: control-plane calls that answer with a key, a connection string, a
  SAS or a publishing password, as NetSPI's Get-AzPasswords harvests them
  (https://www.netspi.com/blog/technical-blog/cloud-pentesting/get-azurepasswords/), and data
  actions that hand out secret material (a secret's value, a released key, a disk's SAS).
- defense-evasion: switching off what records or protects (locks, diagnostic settings, log
  profiles, Defender plans, policy), from the Azure Threat Research Matrix.
- leash: Leash's own reasons (tags Leash reads owners and agents from).
"""

from __future__ import annotations

MICROSOFT_RBAC = "microsoft-rbac"
MICROSOFT_KEY_VAULT = "microsoft-key-vault"
ATTACK_PATHS = "managed-identity-attack-paths"
GET_AZPASSWORDS = "netspi-get-azpasswords"
DEFENSE_EVASION = "defense-evasion"
LEASH = "leash"
BROAD_DELETE = "broad-delete"

ESCALATION: dict[str, tuple[str, ...]] = {
    MICROSOFT_RBAC: (
        "Microsoft.Authorization/roleAssignments/write",
        "Microsoft.Authorization/roleDefinitions/write",
        "Microsoft.Authorization/denyAssignments/write",
        "Microsoft.Authorization/elevateAccess/action",
        # PIM: a request makes an assignment; a policy decides whether it needs approval.
        "Microsoft.Authorization/roleAssignmentScheduleRequests/write",
        "Microsoft.Authorization/roleEligibilityScheduleRequests/write",
        "Microsoft.Authorization/roleManagementPolicies/write",
        # deployIfNotExists/modify policies act as the assignment's managed identity.
        "Microsoft.Authorization/policyAssignments/write",
        "Microsoft.Authorization/policyExemptions/write",
    ),
    MICROSOFT_KEY_VAULT: (
        "Microsoft.KeyVault/vaults/accessPolicies/write",
        "Microsoft.KeyVault/vaults/write",  # access policies inline, or the permission model
    ),
    ATTACK_PATHS: (
        # Acting as a user-assigned identity: attach it, federate it, rewrite it. The operation
        # is `.../assign/action`; built-in roles grant it as `.../*/assign/action`.
        "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
        "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write",
        "Microsoft.ManagedIdentity/userAssignedIdentities/write",
        # Virtual machines and scale sets: commands and extensions run as the VM's identity,
        # a scale set's model carries extensions, and anyone logged in reaches IMDS.
        "Microsoft.Compute/virtualMachines/runCommand/action",
        "Microsoft.Compute/virtualMachines/runCommands/write",
        "Microsoft.Compute/virtualMachines/extensions/write",
        "Microsoft.Compute/virtualMachines/login/action",
        "Microsoft.Compute/virtualMachines/loginAsAdmin/action",
        "Microsoft.Compute/virtualMachineScaleSets/write",
        "Microsoft.Compute/virtualMachineScaleSets/extensions/write",
        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/runCommand/action",
        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/runCommands/write",
        # Arc-enabled servers have identities too.
        "Microsoft.HybridCompute/machines/extensions/write",
        "Microsoft.HybridCompute/machines/runCommands/write",
        # Automation: runbooks (and the modules they import) run as the account's identity.
        "Microsoft.Automation/automationAccounts/runbooks/write",
        "Microsoft.Automation/automationAccounts/runbooks/draft/write",
        "Microsoft.Automation/automationAccounts/jobs/write",
        "Microsoft.Automation/automationAccounts/modules/write",
        "Microsoft.Automation/automationAccounts/python3Packages/write",
        # Logic Apps, web and function apps: definitions, code and settings that run as the
        # app's identity (app settings and config can point the app at any package).
        "Microsoft.Logic/workflows/write",
        "Microsoft.Web/sites/write",
        "Microsoft.Web/sites/config/write",
        "Microsoft.Web/sites/functions/write",
        "Microsoft.Web/sites/extensions/write",
        "Microsoft.Web/sites/sourcecontrols/write",
        "Microsoft.Web/sites/slots/write",
        "Microsoft.Web/sites/slots/config/write",
        # Data Factory pipelines call any endpoint authenticated as the factory's identity.
        "Microsoft.DataFactory/factories/pipelines/write",
        # A shell in a container, or a command on an AKS cluster as cluster admin.
        "Microsoft.ContainerInstance/containerGroups/containers/exec/action",
        "Microsoft.ContainerService/managedClusters/runCommand/action",
    ),
    LEASH: (
        # Leash reads owners, teams and the agent marker from tags.
        "Microsoft.Resources/tags/write",
    ),
}

CREDENTIAL: dict[str, tuple[str, ...]] = {
    GET_AZPASSWORDS: (
        "Microsoft.Storage/storageAccounts/listKeys/action",
        "Microsoft.Storage/storageAccounts/regenerateKey/action",
        "Microsoft.Storage/storageAccounts/ListAccountSas/action",
        "Microsoft.Storage/storageAccounts/listServiceSas/action",
        "Microsoft.Web/sites/config/list/action",
        "Microsoft.Web/sites/publishxml/action",
        "Microsoft.Web/sites/slots/config/list/action",
        "Microsoft.Web/sites/slots/publishxml/action",
        "Microsoft.Web/sites/host/listkeys/action",
        "Microsoft.Web/sites/functions/listKeys/action",
        "Microsoft.Web/sites/functions/listsecrets/action",
        "Microsoft.DocumentDB/databaseAccounts/listKeys/action",
        "Microsoft.DocumentDB/databaseAccounts/readonlykeys/action",
        "Microsoft.DocumentDB/databaseAccounts/listConnectionStrings/action",
        "Microsoft.DocumentDB/databaseAccounts/regenerateKey/action",
        "Microsoft.CognitiveServices/accounts/listKeys/action",
        "Microsoft.CognitiveServices/accounts/regenerateKey/action",
        "Microsoft.ContainerRegistry/registries/listCredentials/action",
        "Microsoft.ContainerRegistry/registries/regenerateCredential/action",
        "Microsoft.ContainerRegistry/registries/generateCredentials/action",
        "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action",
        "Microsoft.ServiceBus/namespaces/authorizationRules/listKeys/action",
        "Microsoft.EventHub/namespaces/authorizationRules/listKeys/action",
        "Microsoft.Cache/redis/listKeys/action",
        "Microsoft.Search/searchServices/listAdminKeys/action",
        "Microsoft.Batch/batchAccounts/listKeys/action",
        "Microsoft.OperationalInsights/workspaces/sharedKeys/action",
        # A SAS URL to a disk or snapshot: the whole disk, secrets on it included (Stratus Red
        # Team's azure.exfiltration.disk-export).
        "Microsoft.Compute/disks/beginGetAccess/action",
        "Microsoft.Compute/snapshots/beginGetAccess/action",
        # Data actions. A secret's value; a key's material released out of the vault. (Reading
        # a secret's metadata reveals no value; sign, unwrap and decrypt use a key inside the
        # vault while the grant lasts, as reading data does, and are not listed.)
        "Microsoft.KeyVault/vaults/secrets/getSecret/action",
        "Microsoft.KeyVault/vaults/keys/release/action",
    ),
}

PRIVILEGED: dict[str, tuple[str, ...]] = {
    DEFENSE_EVASION: (
        "Microsoft.Authorization/locks/write",
        "Microsoft.Authorization/locks/delete",
        "Microsoft.Insights/diagnosticSettings/write",  # can send the logs elsewhere
        "Microsoft.Insights/diagnosticSettings/delete",
        "Microsoft.Insights/logProfiles/delete",
        "Microsoft.Security/pricings/write",  # Defender plans off
        "Microsoft.Authorization/policyAssignments/delete",
        "Microsoft.Authorization/policyDefinitions/write",
        "Microsoft.Authorization/policySetDefinitions/write",
    ),
    ATTACK_PATHS: (
        # Runs a workflow someone else wrote, as its identity, with inputs of one's choosing.
        "Microsoft.Logic/workflows/run/action",
        "Microsoft.Logic/workflows/triggers/run/action",
    ),
}

# Deletes across a whole resource provider (or all of them) are privileged; a delete confined
# to one resource type is not, and neither are these providers' (support tickets).
HARMLESS_DELETE_PROVIDERS: tuple[str, ...] = ("Microsoft.Support",)
