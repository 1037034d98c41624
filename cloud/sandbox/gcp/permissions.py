"""The IAM permission Google checks for each API method the GCP emulator serves.

From the APIs' reference pages ("Authorization requires the following IAM permission ...").
Recommender's permission depends on the recommender or insight type in the path, so a method
may name a template over the path's parameters. "" is a method that needs no permission.
"""

from __future__ import annotations

from collections.abc import Mapping

# (service, REST method) -> permission; `{collection}` etc. come from the path's parameters.
_REST_PERMISSIONS: Mapping[tuple[str, str], str] = {
    ("cloudresourcemanager", "projects.list"): "resourcemanager.projects.list",
    # search returns what the caller may get; Google checks get on each result.
    ("cloudresourcemanager", "projects.search"): "resourcemanager.projects.get",
    ("cloudresourcemanager", "projects.get"): "resourcemanager.projects.get",
    ("cloudresourcemanager", "folders.list"): "resourcemanager.folders.list",
    ("cloudresourcemanager", "folders.search"): "resourcemanager.folders.get",
    ("cloudresourcemanager", "folders.get"): "resourcemanager.folders.get",
    ("cloudresourcemanager", "organizations.search"): "resourcemanager.organizations.get",
    ("cloudresourcemanager", "organizations.get"): "resourcemanager.organizations.get",
    **{
        ("cloudresourcemanager", f"{collection}.{verb}"): f"resourcemanager.{collection}.{verb}"
        for collection in ("projects", "folders", "organizations")
        for verb in ("getIamPolicy", "setIamPolicy")
    },
    # testIamPermissions answers what the caller may do; it needs no permission itself.
    **{
        ("cloudresourcemanager", f"{collection}.testIamPermissions"): ""
        for collection in ("projects", "folders", "organizations")
    },
    ("iam", "policies.listPolicies"): "iam.denypolicies.list",
    ("iam", "policies.createPolicy"): "iam.denypolicies.create",
    ("iam", "policies.get"): "iam.denypolicies.get",
    ("iam", "policies.update"): "iam.denypolicies.update",
    ("iam", "policies.delete"): "iam.denypolicies.delete",
    # Polling a deny-policy operation: the create / update / delete was authorized already.
    ("iam", "policies.operations.get"): "",
    ("recommender", "projects.locations.recommenders.recommendations.list"): "{type}.list",
    ("recommender", "projects.locations.recommenders.recommendations.get"): "{type}.get",
    ("recommender", "projects.locations.insightTypes.insights.list"): "{type}.list",
    ("recommender", "projects.locations.insightTypes.insights.get"): "{type}.get",
}
# Recommender and insight types -> the permission family Google checks for them.
_RECOMMENDER_FAMILIES: Mapping[str, str] = {
    "google.iam.policy.Recommender": "recommender.iamPolicyRecommendations",
    "google.iam.policy.Insight": "recommender.iamPolicyInsights",
    "google.iam.serviceAccount.Insight": "recommender.iamServiceAccountInsights",
}
# IAM admin v1 gRPC method -> permission.
GRPC_PERMISSIONS: Mapping[str, str] = {
    "google.iam.admin.v1.IAM/ListServiceAccounts": "iam.serviceAccounts.list",
    "google.iam.admin.v1.IAM/GetServiceAccount": "iam.serviceAccounts.get",
    "google.iam.admin.v1.IAM/DisableServiceAccount": "iam.serviceAccounts.disable",
    "google.iam.admin.v1.IAM/EnableServiceAccount": "iam.serviceAccounts.enable",
    "google.iam.admin.v1.IAM/GetRole": "iam.roles.get",
    "google.iam.admin.v1.IAM/CreateRole": "iam.roles.create",
    "google.iam.admin.v1.IAM/ListServiceAccountKeys": "iam.serviceAccountKeys.list",
}


def rest_permission(service: str, method: str, params: Mapping[str, str]) -> str:
    """Return the permission Google checks for a REST method called with path `params`."""
    try:
        template = _REST_PERMISSIONS[(service, method)]
    except KeyError:
        raise LookupError(f"no permission is known for {service} {method}") from None
    if "{type}" not in template:
        return template
    kind = params.get("type", "")
    family = _RECOMMENDER_FAMILIES.get(kind, f"recommender.unknownType({kind})")
    return template.format(type=family)


def grpc_permission(method: str) -> str:
    """Return the permission Google checks for a gRPC method (`package.Service/Method`)."""
    try:
        return GRPC_PERMISSIONS[method]
    except KeyError:
        raise LookupError(f"no permission is known for {method}") from None
