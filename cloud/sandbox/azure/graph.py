"""Microsoft Graph v1.0, the little Leash reads: service principals and getByIds."""

from __future__ import annotations

from collections.abc import Callable

from cloud.sandbox.azure import odata
from cloud.sandbox.azure.server import Call, Reply, Route, graph, ok
from cloud.sandbox.azure.state import AzureState, GraphError, JsonObject, ServicePrincipal, World

METADATA = "https://graph.microsoft.com/v1.0/$metadata"
# The first-party tenant that owns every managed identity's application.
MANAGED_IDENTITY_OWNER = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
MAX_IN_VALUES = 15
_Test = Callable[[ServicePrincipal], bool]


def list_service_principals(state: AzureState, call: Call) -> Reply:
    """List service principals, with `$filter`, `$select` and `$top` paging."""
    tests = _tests(call.filter())
    try:
        offset = int(call.query.get("$skiptoken") or 0)
        top = int(call.query.get("$top") or 100)
    except ValueError as error:
        raise GraphError(400, "BadRequest", "Invalid $top or $skiptoken.") from error
    with state.locked() as world:
        matching = [
            principal
            for principal in world.service_principals.values()
            if all(test(principal) for test in tests)
        ]
        page = matching[offset : offset + top]
        body: JsonObject = {
            "@odata.context": f"{METADATA}#servicePrincipals",
            "value": [_select(service_principal_json(world, p), call) for p in page],
        }
    if offset + top < len(matching):
        body["@odata.nextLink"] = (
            f"{call.base_url}/v1.0/servicePrincipals?$top={top}&$skiptoken={offset + top}"
        )
    return ok(body)


def get_service_principal(state: AzureState, call: Call) -> Reply:
    """Return one service principal by object id, or by `(appId='…')`."""
    key, app_id = call.params["id"], call.params["app_id"]
    with state.locked() as world:
        if app_id:
            found = next(
                (p for p in world.service_principals.values() if p.app_id == app_id.lower()), None
            )
        else:
            found = world.service_principals.get(key.lower())
        if found is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{app_id or key}' does not exist or one of its queried "
                "reference-property objects are not present.",
            )
        body = {
            "@odata.context": f"{METADATA}#servicePrincipals/$entity",
            **_select(service_principal_json(world, found), call),
        }
        return ok(body)


def get_by_ids(state: AzureState, call: Call) -> Reply:
    """Return the directory objects among `ids` (unknown ids are left out), of `types`."""
    ids, types = call.body.get("ids"), call.body.get("types") or []
    if not isinstance(ids, list) or not ids or len(ids) > 1000:
        raise GraphError(400, "Request_BadRequest", "Invalid value specified for property 'ids'.")
    wanted = {str(kind).lower() for kind in types}
    found: list[JsonObject] = []
    with state.locked() as world:
        for object_id in (str(value).lower() for value in ids):
            principal = world.service_principals.get(object_id)
            user = world.users.get(object_id)
            if principal is not None and (not wanted or "serviceprincipal" in wanted):
                found.append(
                    {
                        "@odata.type": "#microsoft.graph.servicePrincipal",
                        **service_principal_json(world, principal),
                    }
                )
            elif user is not None and (not wanted or "user" in wanted):
                found.append(
                    {
                        "@odata.type": "#microsoft.graph.user",
                        "id": user.object_id,
                        "displayName": user.display_name,
                        "userPrincipalName": user.user_principal_name,
                        "mail": user.user_principal_name,
                    }
                )
    return ok({"@odata.context": f"{METADATA}#directoryObjects", "value": found})


def service_principal_json(world: World, principal: ServicePrincipal) -> JsonObject:
    """Return a service principal as Graph v1.0 shows it."""
    managed = principal.kind == "ManagedIdentity"
    return {
        "id": principal.object_id,
        "deletedDateTime": None,
        "accountEnabled": True,
        "alternativeNames": list(principal.alternative_names),
        "appDisplayName": None if managed else principal.display_name,
        "appDescription": None,
        "appId": principal.app_id,
        "applicationTemplateId": None,
        "appOwnerOrganizationId": MANAGED_IDENTITY_OWNER if managed else world.tenant_id,
        "appRoleAssignmentRequired": False,
        "description": None,
        "displayName": principal.display_name,
        "homepage": None,
        "notes": principal.notes or None,
        "servicePrincipalNames": [principal.app_id, *principal.alternative_names[1:]],
        "servicePrincipalType": principal.kind,
        "signInAudience": None if managed else "AzureADMyOrg",
        "tags": list(principal.tags),
    }


def _tests(text: str | None) -> list[_Test]:
    try:
        clauses = odata.parse(text)
    except odata.FilterError as error:
        raise GraphError(400, "BadRequest", f"Invalid filter clause: {text}") from error
    return [_test(clause) for clause in clauses]


def _test(clause: odata.Clause) -> _Test:
    field, values = clause.field.lower(), [value.lower() for value in clause.values]
    read = _FIELDS.get(field)
    if clause.op == "in" and read is not None:
        if len(values) > MAX_IN_VALUES:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                "Too many child clauses specified in search filter expression containing 'OR' "
                f"operators: {len(values)}. Max allowed: {MAX_IN_VALUES}.",
            )
        return lambda principal: read(principal).lower() in values
    if clause.op == "eq" and read is not None:
        return lambda principal: read(principal).lower() == values[0]
    if clause.op == "any" and field == "tags":
        return lambda principal: values[0] in (tag.lower() for tag in principal.tags)
    starts = _FIELDS.get(values[0]) if clause.op == "call" and len(values) == 2 else None
    if field == "startswith" and starts is not None:
        return lambda principal: starts(principal).lower().startswith(values[1])
    raise GraphError(
        400,
        "Request_UnsupportedQuery",
        f"Unsupported or invalid query filter clause specified for property '{clause.field}' of "
        "resource 'ServicePrincipal'.",
    )


def _select(body: JsonObject, call: Call) -> JsonObject:
    names = [name.strip() for name in call.query.get("$select", "").split(",") if name.strip()]
    if not names:
        return body
    wanted = {name.lower() for name in names}
    return {key: value for key, value in body.items() if key.lower() in wanted}


_FIELDS: dict[str, Callable[[ServicePrincipal], str]] = {
    "id": lambda principal: principal.object_id,
    "appid": lambda principal: principal.app_id,
    "displayname": lambda principal: principal.display_name,
    "serviceprincipaltype": lambda principal: principal.kind,
}

ROUTES: tuple[Route, ...] = (
    graph("GET", r"/v1\.0/servicePrincipals", list_service_principals),
    graph(
        "GET",
        r"/v1\.0/servicePrincipals(?:/(?P<id>[^/(]+)|\(appId='(?P<app_id>[^']+)'\))",
        get_service_principal,
    ),
    graph("POST", r"/v1\.0/directoryObjects/getByIds", get_by_ids),
)
