"""Resource Manager v3 over REST: organisations, folders, projects and their allow policies."""

from __future__ import annotations

import copy
import fnmatch
import hashlib
import shlex

from cloud.sandbox.gcp.iam_policy import (
    CONCURRENT_CHANGE,
    empty_policy,
    etag_bytes,
    read_policy,
    write_policy,
)
from cloud.sandbox.gcp.rest import Handler, RestCall, Route, route
from cloud.sandbox.gcp.state import (
    ApiError,
    Folder,
    GcpState,
    JsonObject,
    Organization,
    Project,
    Status,
    World,
    page,
    timestamp,
)

SERVICE = "cloudresourcemanager"
_NAME = r"[^/:]+"


def _denied(permission: str, resource: str) -> ApiError:
    # Resource Manager does not say whether a resource exists to a caller who cannot see it.
    return ApiError(
        Status.PERMISSION_DENIED,
        f"Permission '{permission}' denied on resource "
        f"'//cloudresourcemanager.googleapis.com/{resource}' (or it may not exist).",
    )


def _etag(resource: str) -> str:
    return f'W/"{hashlib.sha256(resource.encode()).hexdigest()[:16]}"'


def project_json(project: Project) -> JsonObject:
    """Return a project as Resource Manager v3 shows it (name by number)."""
    return {
        "name": project.name,
        "parent": project.parent,
        "projectId": project.project_id,
        "state": "ACTIVE",
        "displayName": project.display_name,
        "createTime": timestamp(project.create_time),
        "updateTime": timestamp(project.create_time),
        "etag": _etag(project.name),
        "labels": dict(project.labels),
    }


def folder_json(folder: Folder) -> JsonObject:
    """Return a folder as Resource Manager v3 shows it."""
    return {
        "name": folder.name,
        "parent": folder.parent,
        "displayName": folder.display_name,
        "state": "ACTIVE",
        "createTime": timestamp(folder.create_time),
        "updateTime": timestamp(folder.create_time),
        "etag": _etag(folder.name),
    }


def organization_json(organization: Organization) -> JsonObject:
    """Return the organisation as Resource Manager v3 shows it."""
    return {
        "name": organization.name,
        "displayName": organization.domain,
        "directoryCustomerId": organization.customer_id,
        "state": "ACTIVE",
        "createTime": timestamp(organization.create_time),
        "updateTime": timestamp(organization.create_time),
        "etag": _etag(organization.name),
    }


def _project(world: World, ref: str, permission: str) -> Project:
    project = world.project(ref)
    if project is None:
        raise _denied(permission, f"projects/{ref}")
    return project


def _policy_key(world: World, collection: str, ref: str, permission: str) -> str:
    """Return the key the allow policy of `collection/ref` is stored under."""
    if collection == "projects":
        return f"projects/{_project(world, ref, permission).project_id}"
    key = f"{collection}/{ref}"
    if key not in world.folders and key != world.organization.name:
        raise _denied(permission, key)
    return key


def _listed(items: list[JsonObject], call: RestCall, field: str) -> JsonObject:
    chunk, following = page(
        items,
        size=call.query.get("pageSize"),
        token=call.query.get("pageToken"),
        default=50,
        maximum=1000,
    )
    answer: JsonObject = {field: chunk}
    if following:
        answer["nextPageToken"] = following
    return answer


def _get_project(state: GcpState, call: RestCall) -> JsonObject:
    with state.locked() as world:
        return project_json(_project(world, call.params["project"], "resourcemanager.projects.get"))


def _list_projects(state: GcpState, call: RestCall) -> JsonObject:
    parent = call.query.get("parent", "")
    if not parent:
        raise ApiError(Status.INVALID_ARGUMENT, "Request must specify a parent.")
    with state.locked() as world:
        projects = sorted(world.projects.values(), key=lambda p: p.project_id)
        items = [project_json(p) for p in projects if p.parent == parent]
    return _listed(items, call, "projects")


def _search_projects(state: GcpState, call: RestCall) -> JsonObject:
    terms = _query_terms(call.query.get("query", ""))
    with state.locked() as world:
        projects = sorted(world.projects.values(), key=lambda p: p.project_id)
        items = [project_json(p) for p in projects if all(_matches(p, k, v) for k, v in terms)]
    return _listed(items, call, "projects")


def _query_terms(query: str) -> list[tuple[str, str]]:
    terms = []
    for term in shlex.split(query):
        key, separator, value = term.partition(":")
        if not separator:
            key, separator, value = term.partition("=")
        if not separator:
            raise ApiError(Status.INVALID_ARGUMENT, f"Invalid query term: {term!r}.")
        terms.append((key.strip(), value.strip()))
    return terms


def _matches(project: Project, key: str, value: str) -> bool:
    fields = {
        "id": project.project_id,
        "projectid": project.project_id,
        "name": project.display_name,
        "displayname": project.display_name,
        "parent": project.parent,
        "parent.type": project.parent.split("/")[0].rstrip("s"),
        "parent.id": project.parent.split("/")[-1],
        "state": "ACTIVE",
        "lifecyclestate": "ACTIVE",
    }
    lowered = key.lower()
    if lowered.startswith("labels."):
        actual = project.labels.get(key.split(".", 1)[1])
        return actual is not None and (value == "*" or fnmatch.fnmatchcase(actual, value))
    if lowered not in fields:
        raise ApiError(Status.INVALID_ARGUMENT, f"Unsupported query field: {key!r}.")
    return fnmatch.fnmatchcase(fields[lowered].lower(), value.lower())


def _get_folder(state: GcpState, call: RestCall) -> JsonObject:
    name = f"folders/{call.params['folder']}"
    with state.locked() as world:
        if name not in world.folders:
            raise _denied("resourcemanager.folders.get", name)
        return folder_json(world.folders[name])


def _list_folders(state: GcpState, call: RestCall) -> JsonObject:
    parent = call.query.get("parent", "")
    if not parent:
        raise ApiError(Status.INVALID_ARGUMENT, "Request must specify a parent.")
    with state.locked() as world:
        items = [folder_json(f) for f in world.folders.values() if f.parent == parent]
    return _listed(items, call, "folders")


def _search_folders(state: GcpState, call: RestCall) -> JsonObject:
    terms = _query_terms(call.query.get("query", ""))
    with state.locked() as world:
        items = [
            folder_json(folder)
            for folder in world.folders.values()
            if all(_folder_matches(folder, key, value) for key, value in terms)
        ]
    return _listed(items, call, "folders")


def _folder_matches(folder: Folder, key: str, value: str) -> bool:
    fields = {"displayname": folder.display_name, "parent": folder.parent, "state": "ACTIVE"}
    if key.lower() not in fields:
        raise ApiError(Status.INVALID_ARGUMENT, f"Unsupported query field: {key!r}.")
    return fnmatch.fnmatchcase(fields[key.lower()].lower(), value.lower())


def _get_organization(state: GcpState, call: RestCall) -> JsonObject:
    name = f"organizations/{call.params['organization']}"
    with state.locked() as world:
        if name != world.organization.name:
            raise _denied("resourcemanager.organizations.get", name)
        return organization_json(world.organization)


def _search_organizations(state: GcpState, call: RestCall) -> JsonObject:
    terms = _query_terms(call.query.get("query", ""))
    with state.locked() as world:
        organization = world.organization
        fields = {"domain": organization.domain, "directorycustomerid": organization.customer_id}
        wanted = all(fields.get(key.lower()) == value for key, value in terms)
        items = [organization_json(organization)] if wanted else []
    return _listed(items, call, "organizations")


def _get_iam_policy(collection: str) -> Handler:
    def handler(state: GcpState, call: RestCall) -> JsonObject:
        requested = _requested_version(call.body)
        permission = f"resourcemanager.{collection}.getIamPolicy"
        with state.locked() as world:
            key = _policy_key(world, collection, call.params["resource"], permission)
            stored = world.policies.setdefault(key, empty_policy(state.next_etag()))
            return read_policy(stored, requested)

    return handler


def _requested_version(body: JsonObject) -> int:
    options = body.get("options") or {}
    try:
        return int(options.get("requestedPolicyVersion") or 1)
    except (TypeError, ValueError) as error:
        raise ApiError(Status.INVALID_ARGUMENT, "Invalid requestedPolicyVersion.") from error


def _set_iam_policy(collection: str) -> Handler:
    def handler(state: GcpState, call: RestCall) -> JsonObject:
        incoming = call.body.get("policy")
        if not isinstance(incoming, dict):
            raise ApiError(Status.INVALID_ARGUMENT, "Request contains no policy.")
        permission = f"resourcemanager.{collection}.setIamPolicy"
        with state.locked() as world:
            key = _policy_key(world, collection, call.params["resource"], permission)
            stored = world.policies.setdefault(key, empty_policy(state.next_etag()))
            etag = str(incoming.get("etag") or "")
            if not etag:
                state.sets_without_etag += 1
            if state.pending_conflicts > 0:
                # As if another writer got in first: the etag moves on, and this write loses.
                state.pending_conflicts -= 1
                stored["etag"] = state.next_etag()
                raise ApiError(Status.ABORTED, CONCURRENT_CHANGE)
            if etag and etag_bytes(etag) != etag_bytes(stored["etag"]):
                raise ApiError(Status.ABORTED, CONCURRENT_CHANGE)
            if etag and _conditional(stored) and _version_below_3(incoming):
                # Only a write without the etag may replace a version 3 policy by a version 1
                # one, losing its conditions (as Google's Policy documentation warns).
                raise ApiError(
                    Status.INVALID_ARGUMENT,
                    "The policy has conditional role bindings: set it with version 3.",
                )
            written = write_policy(
                stored,
                incoming,
                update_mask=_update_mask(call.body.get("updateMask")),
                new_etag=state.next_etag(),
                account_exists=world.account_exists,
            )
            world.policies[key] = written
            return copy.deepcopy(written)

    return handler


def _conditional(policy: JsonObject) -> bool:
    return any("condition" in binding for binding in policy.get("bindings", []))


def _version_below_3(policy: JsonObject) -> bool:
    try:
        return int(policy.get("version") or 1) < 3
    except (TypeError, ValueError):
        return False  # write_policy refuses it with a clearer message


def _update_mask(value: object) -> str | None:
    if isinstance(value, dict):  # a FieldMask sent as an object rather than a string
        return ",".join(value.get("paths", []))
    return str(value) if value else None


def _test_iam_permissions(collection: str) -> Handler:
    def handler(state: GcpState, call: RestCall) -> JsonObject:
        permission = f"resourcemanager.{collection}.get"
        with state.locked() as world:
            _policy_key(world, collection, call.params["resource"], permission)
        # The emulator's callers are anonymous and may do everything.
        return {"permissions": list(call.body.get("permissions", []))}

    return handler


def _policy_routes(collection: str) -> list[Route]:
    makers = {
        "getIamPolicy": _get_iam_policy,
        "setIamPolicy": _set_iam_policy,
        "testIamPermissions": _test_iam_permissions,
    }
    return [
        route(
            "POST",
            rf"/v3/{collection}/(?P<resource>{_NAME}):{verb}",
            SERVICE,
            f"{collection}.{verb}",
            f"{collection}/{{resource}}",
            make(collection),
        )
        for verb, make in makers.items()
    ]


ROUTES: list[Route] = [
    route("GET", r"/v3/projects", SERVICE, "projects.list", "{parent}", _list_projects),
    route("GET", r"/v3/projects:search", SERVICE, "projects.search", "{query}", _search_projects),
    route(
        "GET",
        rf"/v3/projects/(?P<project>{_NAME})",
        SERVICE,
        "projects.get",
        "projects/{project}",
        _get_project,
    ),
    route("GET", r"/v3/folders", SERVICE, "folders.list", "{parent}", _list_folders),
    route("GET", r"/v3/folders:search", SERVICE, "folders.search", "{query}", _search_folders),
    route(
        "GET",
        rf"/v3/folders/(?P<folder>{_NAME})",
        SERVICE,
        "folders.get",
        "folders/{folder}",
        _get_folder,
    ),
    route(
        "GET",
        r"/v3/organizations:search",
        SERVICE,
        "organizations.search",
        "{query}",
        _search_organizations,
    ),
    route(
        "GET",
        rf"/v3/organizations/(?P<organization>{_NAME})",
        SERVICE,
        "organizations.get",
        "organizations/{organization}",
        _get_organization,
    ),
    *_policy_routes("projects"),
    *_policy_routes("folders"),
    *_policy_routes("organizations"),
]
