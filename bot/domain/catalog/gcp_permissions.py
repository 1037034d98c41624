"""Google Cloud IAM permissions by catalogue category, each group with the source that says why.

A role is tiered on the permissions IAM `roles.get` says it carries (`catalog_gcp.
permission_category`), so what decides is here, not the role's name. Three sources:

- RHINO: Rhino Security Labs' GCP privilege-escalation research (blog parts 1 and 2, and
  https://github.com/RhinoSecurityLabs/GCP-IAM-Privilege-Escalation: the exploit scripts and
  the `methods_and_permissions` table of PrivEscScanner/check_for_privesc.py).
- GOOGLE_IAM: Google's IAM documentation (permissions reference, "Roles for service account
  authentication", "Create and manage custom roles", "Deny access", "Workload Identity
  Federation", "Service account impersonation").
- GOOGLE_PRODUCT: the product's own access-control page on cloud.google.com (named in the
  comment), which says the workload runs as a service account the caller picks, or what the
  permission destroys.

Categories: ESCALATION changes who may do what, or runs code the caller chooses as another
identity; CREDENTIAL mints or reveals a credential that outlives the grant; PRIVILEGED
destroys data or the audit trail, or reads secrets. Permission names are Google's exact,
case-sensitive spelling (`service.resource.verb`).
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.domain.catalog.categories import ActionCategory

RHINO = "gcp-iam-privilege-escalation"
GOOGLE_IAM = "google-iam-docs"
GOOGLE_PRODUCT = "google-cloud-product-docs"

Catalogued = tuple[ActionCategory, str]  # category, source

ESCALATION = ActionCategory.ESCALATION
CREDENTIAL = ActionCategory.CREDENTIAL
PRIVILEGED = ActionCategory.PRIVILEGED

GROUPS: tuple[tuple[ActionCategory, str, tuple[str, ...]], ...] = (
    # Allow policies and acting as a service account (Rhino: SetOrgIAMPolicy,
    # SetFolderIAMPolicy, SetProjectIAMPolicy, SetServiceAccountIAMPolicy; actAs is what every
    # "create a workload as the account" method needs; UpdateIAMRole adds any permission to a
    # role the caller already holds, at project or organization level).
    (
        ESCALATION,
        RHINO,
        (
            "resourcemanager.organizations.setIamPolicy",
            "resourcemanager.folders.setIamPolicy",
            "resourcemanager.projects.setIamPolicy",
            "iam.serviceAccounts.setIamPolicy",
            "iam.serviceAccounts.actAs",
            "iam.roles.update",
            # SetOrgPolicyConstraints: lifts constraints such as
            # iam.disableServiceAccountKeyCreation (orgpolicy.policy.set.py).
            "orgpolicy.policy.set",
        ),
    ),
    # Code execution as a service account the caller picks (Rhino's exploit scripts and
    # scanner: RCECloudBuildBuildServer, CreateDeploymentManagerDeployment,
    # ExfilCloudFunctionCreds*, UpdateCloudFunction, CreateGCEInstanceWithSA,
    # ExfilCloudRunService*, CreateCloudSchedulerHTTPRequest).
    (
        ESCALATION,
        RHINO,
        (
            "cloudbuild.builds.create",
            "deploymentmanager.deployments.create",
            "cloudfunctions.functions.create",
            "cloudfunctions.functions.update",
            "cloudfunctions.functions.sourceCodeSet",
            "compute.instances.create",
            "compute.instances.setServiceAccount",
            "compute.instances.setMetadata",  # startup-script / ssh-keys on the VM
            "run.services.create",
            "cloudscheduler.jobs.create",
        ),
    ),
    # The same paths through their update and sibling permissions, from each product's
    # access-control page: the workload runs as a service account, so rewriting it runs new
    # code as that account.
    (
        ESCALATION,
        GOOGLE_PRODUCT,
        (
            # Cloud Build "IAM permissions": builds.update edits triggers (their build config
            # and service account).
            "cloudbuild.builds.update",
            # Deployment Manager runs as the project's Google APIs service agent.
            "deploymentmanager.deployments.update",
            # Cloud Run "Access control": services and jobs run as their service identity.
            "run.services.update",
            "run.jobs.create",
            "run.jobs.update",
            # Compute Engine "Set custom metadata": project-wide metadata (ssh-keys,
            # startup-script) reaches every VM, and each VM's service account with it.
            "compute.projects.setCommonInstanceMetadata",
            # GKE "Access control": nodes run as the node pool's service account.
            "container.clusters.create",
            "container.clusters.update",
            # Cloud Composer "Access control": Airflow runs DAGs as the environment's account.
            "composer.environments.create",
            "composer.environments.update",
            # Dataflow "Security and permissions": workers run as the worker service account.
            "dataflow.jobs.create",
            # Dataproc "Service accounts": cluster VMs run as the cluster's service account.
            "dataproc.clusters.create",
            # Vertex AI Workbench and custom training run as a chosen service account.
            "notebooks.instances.create",
            "aiplatform.customJobs.create",
            # Workflows "Grant a workflow permission": each step calls APIs as its account.
            "workflows.workflows.create",
            "workflows.workflows.update",
            "cloudscheduler.jobs.update",
        ),
    ),
    # IAM's own controls (Google's IAM documentation).
    (
        ESCALATION,
        GOOGLE_IAM,
        (
            # "Create and manage custom roles": a new custom role holds any permission the
            # caller can name, an undeleted one comes back with its old bindings.
            "iam.roles.create",
            "iam.roles.undelete",
            # The account's own record (description holds `leash:owner`; disabled state) is
            # what Leash reads and what quarantine sets.
            "iam.serviceAccounts.update",
            "iam.serviceAccounts.disable",
            "iam.serviceAccounts.enable",
            # "Deny access": deny policies are Leash's guardrail and grant denies.
            "iam.denypolicies.create",
            "iam.denypolicies.update",
            "iam.denypolicies.delete",
            # Organization Policy v2 API: the same constraints orgpolicy.policy.set sets.
            "orgpolicy.policies.create",
            "orgpolicy.policies.update",
            "orgpolicy.policies.delete",
            # "Workload Identity Federation": a pool's providers decide which outside
            # identities become principals that can impersonate service accounts.
            "iam.workloadIdentityPools.create",
            "iam.workloadIdentityPools.update",
            "iam.workloadIdentityPools.undelete",
            "iam.workloadIdentityPoolProviders.create",
            "iam.workloadIdentityPoolProviders.update",
            "iam.workloadIdentityPoolProviders.undelete",
            "iam.workloadIdentityPoolProviderKeys.create",
        ),
    ),
    # Credentials for a service account that outlive any grant (Rhino: CreateServiceAccountKey,
    # GetServiceAccountAccessToken, ServiceAccountImplicitDelegation, ServiceAccountSignBlob,
    # ServiceAccountSignJwt, CreateServiceAccountHMACKey, CreateAPIKey).
    (
        CREDENTIAL,
        RHINO,
        (
            "iam.serviceAccountKeys.create",
            "iam.serviceAccounts.getAccessToken",
            "iam.serviceAccounts.implicitDelegation",
            "iam.serviceAccounts.signBlob",
            "iam.serviceAccounts.signJwt",
            "storage.hmacKeys.create",
            "serviceusage.apiKeys.create",
        ),
    ),
    (
        CREDENTIAL,
        GOOGLE_IAM,
        (
            # "Service account impersonation": an OpenID Connect ID token for the account.
            "iam.serviceAccounts.getOpenIdToken",
            # API Keys API (successor of serviceusage.apiKeys.*): a new key, or an existing
            # key's string.
            "apikeys.keys.create",
            "apikeys.keys.getKeyString",
        ),
    ),
    # Destroys data or the audit trail, or reads secrets: an owner should see it first.
    (
        PRIVILEGED,
        GOOGLE_PRODUCT,
        (
            # Secret Manager "Access control": reads a secret's payload. Privileged, not
            # credential: it reveals data someone stored for a known use, it does not mint a
            # credential for the agent's own or another identity, and agents often need it.
            "secretmanager.versions.access",
            # Cloud KMS "Destroy and restore key versions": data under it is lost for good.
            "cloudkms.cryptoKeyVersions.destroy",
            # Cloud Logging "Access control": sinks export the audit trail; buckets and logs
            # hold it.
            "logging.sinks.delete",
            "logging.sinks.update",
            "logging.buckets.delete",
            "logging.logs.delete",
            # Cloud Storage, BigQuery, Resource Manager: whole containers of data.
            "storage.buckets.delete",
            "bigquery.datasets.delete",
            "resourcemanager.projects.delete",
        ),
    ),
)

PERMISSIONS: Mapping[str, Catalogued] = {
    permission: (category, source)
    for category, source, permissions in GROUPS
    for permission in permissions
}
# Any `setIamPolicy` replaces a resource's allow policy: who may do what on it (Rhino's scanner
# reports every one as "Misc. setIamPolicy Permissions").
SUFFIX_RULES: tuple[tuple[str, ActionCategory, str], ...] = ((".setIamPolicy", ESCALATION, RHINO),)
