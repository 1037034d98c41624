"""Azure built-in roles Leash knows, by their role definition GUID (fixed across every tenant).

GUIDs and names are Microsoft's, from the built-in roles reference
(https://learn.microsoft.com/azure/role-based-access-control/built-in-roles, the table in
MicrosoftDocs/azure-docs `articles/role-based-access-control/built-in-roles.md`). Each role is
listed once, in one category, with why it is there. A role not listed here (a custom role,
or a built-in one Leash does not name) is tiered on what its definition carries, as the cloud
resolves it (`catalog_azure_actions`); one the cloud cannot resolve is refused.

Escalation: the role manages access (role or deny assignments), acts as or mints credentials
for an identity, rewrites the tags Leash reads owners from, or runs code of the holder's choice
as some other identity (a VM's, an Automation account's, a web or logic app's), or hands out
credentials (keys, secrets) that outlive the grant: a role carrying any of the operations
`catalog_azure_actions` lists as escalation or credential is listed here, so its name and its
resolved definition give it the same tier.
Privileged: everything else that writes a sensitive control plane or reads all data.
"""

from __future__ import annotations

ESCALATION: dict[str, str] = {
    # Actions "*": assigns any role.
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    # Microsoft.Authorization/*: role and deny assignments, role definitions.
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    # roleAssignments/write and /delete at its scope.
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
    # Actions "*" but Authorization writes: writes federated credentials on any user-assigned
    # identity (then signs in as it), runs commands on VMs, rewrites tags.
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    # userAssignedIdentities/*/assign/action: attaches an identity to compute it controls.
    "f1a07417-d97a-45cb-824c-7a7467783830": "Managed Identity Operator",
    # Writes identities, their tags and federated credentials (then signs in as one).
    "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59": "Managed Identity Contributor",
    # virtualMachines/*: runCommand and extensions run code as the VM's managed identity.
    "9980e02c-c2be-4d73-94e8-173b1dc7cf3c": "Virtual Machine Contributor",
    # Log in as administrator on a VM: IMDS then hands out the VM's identity tokens.
    "1c0163c0-47e6-4577-8991-ea5c82e286e4": "Virtual Machine Administrator Login",
    # automationAccounts/*: runbooks it writes run as the Automation account's identity.
    "f353d9bd-d4a6-484e-a77a-8050b599b867": "Automation Contributor",
    # Microsoft.KeyVault/*: vault access policies, so it can give itself every secret and key.
    "f25e0fa2-a7c8-4377-a976-54943a77a395": "Key Vault Contributor",
    # Assigns Key Vault data roles (an ABAC condition limits which, not to whom).
    "8b54135c-b56d-4d72-a534-26097cfdc8d8": "Key Vault Data Access Administrator",
    # Microsoft.Web/sites/*: deploys code that runs as the web app's managed identity.
    "de139f84-1756-47ae-9be6-808fbbe84772": "Website Contributor",
    # Microsoft.Logic/*: workflows whose actions authenticate as the logic app's identity.
    "87a39d53-fc1b-424a-814c-f7e04687dc9e": "Logic App Contributor",
    # Microsoft.Resources/tags/*: rewrites the owner, team and agent tags Leash reads.
    "4a9ae827-6dc8-4573-8ac7-8239d42aa03f": "Tag Contributor",
    # automationAccounts/jobs/write (guarded): starts runbooks, with parameters of the
    # holder's choosing, as the Automation account's identity.
    "d3881f73-407a-4167-8283-e981cbba0404": "Automation Operator",
    "4fe576fe-1146-4730-92eb-48519fa6bf9f": "Automation Job Operator",
    # Credentials (tiered as escalation): storageAccounts/listKeys/action, all data via
    # Shared Key.
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
    # Credentials: secrets/getSecret/action, every secret's value in scope.
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    # A certificate's private key is read as its secret.
    "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba": "Key Vault Certificate User",
    # keys/*: keys/release/action exports a key's material.
    "14b46e9e-c2b7-41b4-b07b-48a6ebf60603": "Key Vault Crypto Officer",
    # Credentials: accounts/listKeys/action (and creating accounts, for the Contributor).
    "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68": "Cognitive Services Contributor",
    "a97b65f3-24c7-4388-baec-2e87135dc908": "Cognitive Services User",
}

PRIVILEGED: dict[str, str] = {
    # Full blob data access including POSIX ACLs.
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    # Every certificate operation but reading the secret behind one.
    "a4417e6f-fecd-4de8-b567-7b0420556985": "Key Vault Certificates Officer",
    # Fine-tunes and deploys models.
    "a001fd3d-188f-4b5d-821b-7da978bf7442": "Cognitive Services OpenAI Contributor",
    # Every action inside an AI hub.
    "64702f94-c441-49e6-a78b-ef80e0188fee": "Azure AI Developer",
}

NORMAL: dict[str, str] = {
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "19e7f393-937e-4f77-808e-94535e297925": "Storage Queue Data Reader",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "76199698-9eea-4c19-bc75-cec21354c6b6": "Storage Table Data Reader",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd": "Cognitive Services OpenAI User",
    "b59867f0-fa02-499b-be73-45a86b5b3e1c": "Cognitive Services Data Reader",
    "21090545-7ca7-4776-b22c-e363652d74d2": "Key Vault Reader",
    "12338af0-0e69-4776-bea7-57ae8d297424": "Key Vault Crypto User",
    "43d0d8ad-25c7-4714-9337-8ba259a9fe05": "Monitoring Reader",
    "73c42c96-874c-492b-b04d-ab87d138a893": "Log Analytics Reader",
    "3b03c2da-16b3-4a49-8834-0f8130efdd3b": "Log Analytics Data Reader",
    "7f951dda-4ed3-4680-a7ca-43fe172d538d": "AcrPull",
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": "Azure Service Bus Data Sender",
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": "Azure Service Bus Data Receiver",
    "2b629674-e913-4c01-ae53-ef4638d8f975": "Azure Event Hubs Data Sender",
    "a638d3c7-ab3a-418d-83e6-5f17a39d4fde": "Azure Event Hubs Data Receiver",
    "1407120a-92aa-4202-b7e9-c0e197c71c8f": "Search Index Data Reader",
    "fa23ad8b-c56e-40d8-ac0c-ce449e1d2c64": "Billing Reader",
    "72fafb9e-0641-4937-9268-a91bfd8191a3": "Cost Management Reader",
}
