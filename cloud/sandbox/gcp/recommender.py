"""Recommender v1 over REST: IAM role recommendations, permission and service-account insights.

The IAM recommender looks back `OBSERVATION_DAYS` days. Service-account insights exist only for
accounts that have not authenticated in that window (as Google documents them); an account the
emulator has no authentication record for gets none, like one observed for less than the window.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from cloud.sandbox.gcp.rest import RestCall, Route, route
from cloud.sandbox.gcp.state import (
    ApiError,
    GcpState,
    JsonObject,
    Project,
    RoleRecommendation,
    ServiceAccount,
    Status,
    World,
    page,
    timestamp,
)

SERVICE = "recommender"
IAM_RECOMMENDER = "google.iam.policy.Recommender"
POLICY_INSIGHT = "google.iam.policy.Insight"
ACCOUNT_INSIGHT = "google.iam.serviceAccount.Insight"
OBSERVATION_DAYS = 90
PROJECT_TYPE = "cloudresourcemanager.googleapis.com/Project"
_NAMESPACE = uuid.UUID("6f1d3c2e-6a53-4f4b-9a4e-1e8f0c6b7d21")
_MEMBERS = "/iamPolicy/bindings/*/members/*"
_ROLE = "/iamPolicy/bindings/*/role"
_CONDITION = "/iamPolicy/bindings/*/condition/expression"


def _id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "|".join(parts)))


def _etag(*parts: str) -> str:
    return f'"{hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]}"'


def _project_resource(project: Project) -> str:
    return f"//cloudresourcemanager.googleapis.com/projects/{project.project_id}"


def _location(project: Project) -> str:
    return f"projects/{project.number}/locations/global"


def recommendation_name(project: Project, rec: RoleRecommendation) -> str:
    """Return the name of the recommendation about `rec` (by project number, as Google's)."""
    return (
        f"{_location(project)}/recommenders/{IAM_RECOMMENDER}/recommendations/"
        f"{_id('recommendation', rec.project_id, rec.member, rec.role)}"
    )


def _policy_insight_name(project: Project, rec: RoleRecommendation) -> str:
    return (
        f"{_location(project)}/insightTypes/{POLICY_INSIGHT}/insights/"
        f"{_id('insight', rec.project_id, rec.member, rec.role)}"
    )


def _recommendation(project: Project, rec: RoleRecommendation) -> JsonObject:
    resource = _project_resource(project)
    remove = {
        "action": "remove",
        "resourceType": PROJECT_TYPE,
        "resource": resource,
        "path": _MEMBERS,
        "pathFilters": {_CONDITION: "", _MEMBERS: rec.member, _ROLE: rec.role},
    }
    operations: list[JsonObject] = [remove]
    if rec.replacement_role:
        add = {
            "action": "add",
            "resourceType": PROJECT_TYPE,
            "resource": resource,
            "path": "/iamPolicy/bindings/*/members/-",
            "value": rec.member,
            "pathFilters": {_CONDITION: "", _ROLE: rec.replacement_role},
        }
        operations = [add, remove]
    revoked = max(rec.total_permissions - len(rec.exercised) - len(rec.inferred), 0)
    return {
        "name": recommendation_name(project, rec),
        "description": (
            "Replace the current role with a smaller role to cover the permissions needed."
            if rec.replacement_role
            else "This role has not been used during the observation window."
        ),
        "recommenderSubtype": "REPLACE_ROLE" if rec.replacement_role else "REMOVE_ROLE",
        "lastRefreshTime": timestamp(rec.refreshed_at),
        "primaryImpact": {
            "category": "SECURITY",
            "securityProjection": {"details": {"revokedIamPermissionsCount": revoked}},
        },
        "priority": "P4" if rec.replacement_role else "P2",
        "content": {
            "operationGroups": [{"operations": operations}],
            "overview": {
                "member": rec.member,
                "removedRole": rec.role,
                "addedRoles": [rec.replacement_role] if rec.replacement_role else [],
                "resourceName": resource,
                "minimumObservationPeriodInDays": str(OBSERVATION_DAYS),
            },
        },
        "stateInfo": {"state": "ACTIVE"},
        "etag": _etag("recommendation", rec.project_id, rec.member, rec.role),
        "associatedInsights": [{"insight": _policy_insight_name(project, rec)}],
        "targetResources": [resource],
    }


def _insight_common(at: datetime) -> JsonObject:
    return {
        "lastRefreshTime": timestamp(at),
        "observationPeriod": f"{OBSERVATION_DAYS * 86400}s",
        "stateInfo": {"state": "ACTIVE"},
        "category": "SECURITY",
        "severity": "LOW",
    }


def _policy_insight(project: Project, rec: RoleRecommendation) -> JsonObject:
    used = len(rec.exercised) + len(rec.inferred)
    return {
        "name": _policy_insight_name(project, rec),
        "description": (
            f"{used} of the {rec.total_permissions} permissions in this role binding were used "
            f"in the past {OBSERVATION_DAYS} days."
        ),
        "content": {
            "role": rec.role,
            "member": rec.member,
            "condition": {"expression": "", "title": "", "description": "", "location": ""},
            "exercisedPermissions": [{"permission": p} for p in rec.exercised],
            "inferredPermissions": [{"permission": p} for p in rec.inferred],
            "currentTotalPermissionsCount": str(rec.total_permissions),
        },
        "insightSubtype": "PERMISSIONS_USAGE",
        "targetResources": [_project_resource(project)],
        "etag": _etag("insight", rec.project_id, rec.member, rec.role),
        "associatedRecommendations": [{"recommendation": recommendation_name(project, rec)}],
        **_insight_common(rec.refreshed_at),
    }


def _account_insight(
    project: Project, account: ServiceAccount, last: datetime | None, now: datetime
) -> JsonObject:
    content: JsonObject = {"email": account.email, "serviceAccountId": account.unique_id}
    if last is not None:
        content["lastAuthenticatedTime"] = timestamp(last)
    return {
        "name": (
            f"{_location(project)}/insightTypes/{ACCOUNT_INSIGHT}/insights/"
            f"{_id('account-insight', account.email)}"
        ),
        "description": (
            f"Service account {account.email} has not been used in the past "
            f"{OBSERVATION_DAYS} days."
        ),
        "content": content,
        "insightSubtype": "SERVICE_ACCOUNT_USAGE",
        "targetResources": [
            f"//iam.googleapis.com/projects/{project.project_id}/serviceAccounts/{account.unique_id}"
        ],
        "etag": _etag("account-insight", account.email),
        **_insight_common(now - timedelta(hours=6)),
    }


def recommendations(world: World, project: Project) -> list[JsonObject]:
    """Return the IAM role recommendations of a project."""
    return [_recommendation(project, r) for r in world.recommendations if _on(r, project)]


def insights(world: World, project: Project, insight_type: str, now: datetime) -> list[JsonObject]:
    """Return the insights of one type on a project as Google would show them at `now`."""
    if insight_type == POLICY_INSIGHT:
        return [_policy_insight(project, r) for r in world.recommendations if _on(r, project)]
    if insight_type != ACCOUNT_INSIGHT:
        return []
    window_start = now - timedelta(days=OBSERVATION_DAYS)
    found = []
    for account in world.service_accounts.values():
        if account.project_id != project.project_id:
            continue
        if account.email not in world.last_authentication:
            continue
        last = world.last_authentication[account.email]
        if last is None or last < window_start:
            found.append(_account_insight(project, account, last, now))
    return found


def _on(rec: RoleRecommendation, project: Project) -> bool:
    return rec.project_id == project.project_id


def _project(world: World, call: RestCall) -> Project:
    project = world.project(call.params["project"])
    if project is None:
        raise ApiError(
            Status.PERMISSION_DENIED,
            f"Permission denied on resource 'projects/{call.params['project']}' "
            "(or it may not exist).",
        )
    return project


def _collect(
    state: GcpState, call: RestCall, kind: str
) -> tuple[list[JsonObject], Callable[[JsonObject], bool]]:
    selected = _filter(call.query.get("filter", ""))
    now = state.now()
    with state.locked() as world:
        project = _project(world, call)
        if call.params["location"] != "global":
            return [], selected
        if kind == "recommendations":
            found = (
                recommendations(world, project) if call.params["type"] == IAM_RECOMMENDER else []
            )
        else:
            found = insights(world, project, call.params["type"], now)
    return found, selected


def _list(kind: str) -> Callable[[GcpState, RestCall], JsonObject]:
    def handler(state: GcpState, call: RestCall) -> JsonObject:
        found, selected = _collect(state, call, kind)
        chunk, following = page(
            [item for item in found if selected(item)],
            size=call.query.get("pageSize"),
            token=call.query.get("pageToken"),
            default=50,
            maximum=1000,
        )
        answer: JsonObject = {kind: chunk}
        if following:
            answer["nextPageToken"] = following
        return answer

    return handler


def _get(kind: str) -> Callable[[GcpState, RestCall], JsonObject]:
    def handler(state: GcpState, call: RestCall) -> JsonObject:
        found, _ = _collect(state, call, kind)
        wanted = call.params["id"]
        for item in found:
            if item["name"].rsplit("/", 1)[-1] == wanted:
                return item
        raise ApiError(Status.NOT_FOUND, f"{kind[:-1].capitalize()} {wanted!r} not found.")

    return handler


def _filter(text: str) -> Callable[[JsonObject], bool]:
    """Parse `a = b AND (c = d OR c = e)` over dotted JSON fields (what the emulator supports)."""
    clauses: list[list[tuple[str, str]]] = []
    for clause in filter(None, (c.strip() for c in text.split(" AND "))):
        options = []
        for option in clause.strip("()").split(" OR "):
            field, equals, value = option.partition("=")
            if not equals or not field.strip():
                raise ApiError(Status.INVALID_ARGUMENT, f"Unsupported filter: {text!r}.")
            options.append((field.strip(), value.strip().strip('"')))
        clauses.append(options)

    def selected(item: JsonObject) -> bool:
        return all(any(_field(item, f) == v for f, v in options) for options in clauses)

    return selected


def _field(item: JsonObject, dotted: str) -> object:
    value: object = item
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


_PARENT = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
_RECOMMENDATIONS = rf"{_PARENT}/recommenders/(?P<type>[^/]+)/recommendations"
_INSIGHTS = rf"{_PARENT}/insightTypes/(?P<type>[^/]+)/insights"
_RECOMMENDER_RESOURCE = "projects/{project}/locations/{location}/recommenders/{type}"
_INSIGHT_RESOURCE = "projects/{project}/locations/{location}/insightTypes/{type}"

ROUTES: list[Route] = [
    route(
        "GET",
        _RECOMMENDATIONS,
        SERVICE,
        "projects.locations.recommenders.recommendations.list",
        _RECOMMENDER_RESOURCE,
        _list("recommendations"),
    ),
    route(
        "GET",
        rf"{_RECOMMENDATIONS}/(?P<id>[^/:]+)",
        SERVICE,
        "projects.locations.recommenders.recommendations.get",
        f"{_RECOMMENDER_RESOURCE}/recommendations/{{id}}",
        _get("recommendations"),
    ),
    route(
        "GET",
        _INSIGHTS,
        SERVICE,
        "projects.locations.insightTypes.insights.list",
        _INSIGHT_RESOURCE,
        _list("insights"),
    ),
    route(
        "GET",
        rf"{_INSIGHTS}/(?P<id>[^/:]+)",
        SERVICE,
        "projects.locations.insightTypes.insights.get",
        f"{_INSIGHT_RESOURCE}/insights/{{id}}",
        _get("insights"),
    ),
]
