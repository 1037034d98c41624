"""Microsoft.Authorization role definitions and role assignments (api-version 2022-04-01).

Built-in roles are seeded; custom roles are created with PUT (201), listed and read where
their assignable scopes reach, and a GET of one that does not exist answers 404
RoleDefinitionDoesNotExist, as ARM does.
"""

from __future__ import annotations

from datetime import datetime

from cloud.sandbox.azure import odata
from cloud.sandbox.azure.server import Call, Reply, Route, arm, ok
from cloud.sandbox.azure.state import (
    ArmError,
    AzureState,
    JsonObject,
    RoleAssignment,
    RoleDefinition,
    World,
    check_scope,
    clean_scope,
    covers,
    is_guid,
    role_definition_id,
    same_scope,
    timestamp,
)

# Versions whose role-assignment and role-definition shapes match what the emulator serves.
ROLE_VERSIONS = ("2022-04-01", "2022-05-01-preview", "2020-10-01-preview", "2018-01-01-preview")
BUILT_IN_SINCE = datetime.fromisoformat("2015-02-02T21:55:09.880642+00:00")
_SCOPE = r"(?P<scope>(?:/[^/]+)*?)"
_DEFINITIONS = rf"{_SCOPE}/providers/Microsoft\.Authorization/roleDefinitions"
_ASSIGNMENTS = rf"{_SCOPE}/providers/Microsoft\.Authorization/roleAssignments"


def list_definitions(state: AzureState, call: Call) -> Reply:
    """List the role definitions usable at a scope, filtered by roleName or type."""
    scope = clean_scope(call.params["scope"])
    wanted: list[tuple[str, str]] = []
    for clause in _clauses(call):
        if clause.op != "eq" or clause.field.lower() not in ("rolename", "type"):
            raise _unsupported(call)
        wanted.append((clause.field.lower(), clause.values[0]))
    with state.locked() as world:
        check_scope(world, scope)
        roles = [
            role
            for role in world.role_definitions.values()
            if _visible(role, scope)
            and all(_role_matches(role, field, value) for field, value in wanted)
        ]
        return ok({"value": [definition_json(scope, role) for role in roles]})


def get_definition(state: AzureState, call: Call) -> Reply:
    """Return one role definition, by scope and GUID or by its full id."""
    scope = clean_scope(call.params["scope"])
    with state.locked() as world:
        check_scope(world, scope)
        role = world.role_definitions.get(call.params["name"].lower())
        if role is None or not _visible(role, scope):
            raise ArmError(
                404,
                "RoleDefinitionDoesNotExist",
                f"The specified role definition with ID '{call.params['name']}' does not exist.",
            )
        return ok(definition_json(scope, role))


def _permissions(properties: JsonObject) -> dict[str, list[str]]:
    """Gather a role body's permission blocks into one list per kind."""
    permissions: dict[str, list[str]] = {
        "actions": [],
        "notActions": [],
        "dataActions": [],
        "notDataActions": [],
    }
    for block in properties.get("permissions") or []:
        for key, values in permissions.items():
            values += [str(v) for v in block.get(key) or []]
    return permissions


def create_definition(state: AzureState, call: Call) -> Reply:
    """Create or replace a custom role; a built-in role or another role's name is refused."""
    scope, name = clean_scope(call.params["scope"]), call.params["name"]
    properties = call.body.get("properties") or {}
    if not is_guid(name):
        raise ArmError(
            400,
            "InvalidRoleDefinitionId",
            f"The role definition ID '{name}' is not valid. The role definition ID must be a GUID.",
        )
    role_name = str(properties.get("roleName") or "").strip()
    if not role_name:
        raise ArmError(400, "RoleDefinitionNameNullOrEmpty", "The role name cannot be empty.")
    if str(properties.get("type") or "CustomRole").lower() != "customrole":
        raise ArmError(400, "InvalidRoleDefinitionType", "Only custom roles can be created.")
    scopes = tuple(clean_scope(str(s)) or "/" for s in properties.get("assignableScopes") or [])
    if not scopes:
        raise ArmError(
            400, "InvalidAssignableScopes", "The role definition must have an assignable scope."
        )
    with state.locked() as world:
        check_scope(world, scope)
        for assignable in scopes:
            check_scope(world, assignable)
        existing = world.role_definitions.get(name.lower())
        if existing is not None and existing.role_type != "CustomRole":
            raise ArmError(
                403,
                "RoleDefinitionIsNotCustom",  # the emulator's wording: ARM documents no code
                f"The role definition '{name}' is built in and cannot be changed.",
            )
        if any(
            other.role_name.lower() == role_name.lower() and other.guid != name.lower()
            for other in world.role_definitions.values()
        ):
            raise ArmError(
                409,
                "RoleDefinitionWithSameNameExists",
                "A custom role with the same name already exists in this directory. Use a "
                "different name.",
            )
        permissions = _permissions(properties)
        role = RoleDefinition(
            name.lower(),
            role_name,
            str(properties.get("description") or ""),
            actions=tuple(permissions["actions"]),
            not_actions=tuple(permissions["notActions"]),
            data_actions=tuple(permissions["dataActions"]),
            not_data_actions=tuple(permissions["notDataActions"]),
            role_type="CustomRole",
            assignable_scopes=scopes,
        )
        world.role_definitions[role.guid] = role
        return ok(definition_json(scope, role), status=201)


def list_assignments(state: AzureState, call: Call) -> Reply:
    """List role assignments at, above and below a scope, or as `atScope()`/principal filter."""
    scope = clean_scope(call.params["scope"])
    at_scope, principal = False, None
    for clause in _clauses(call):
        name = clause.field.lower()
        if clause.op == "call" and name == "atscope" and not clause.values:
            at_scope = True
        elif (clause.op == "eq" and name == "principalid") or (
            clause.op == "call" and name == "assignedto" and len(clause.values) == 1
        ):
            principal = clause.values[0]
        else:
            raise _unsupported(call)
    with state.locked() as world:
        check_scope(world, scope)
        found = [
            assignment_json(assignment)
            for assignment, _ in world.effective_assignments(state.now())
            if covers(assignment.scope, scope) or (not at_scope and covers(scope, assignment.scope))
            if principal is None or assignment.principal_id.lower() == principal.lower()
        ]
        return ok({"value": found})


def get_assignment(state: AzureState, call: Call) -> Reply:
    """Return one role assignment by scope and name (or by its full id)."""
    scope, name = clean_scope(call.params["scope"]), call.params["name"]
    with state.locked() as world:
        found = _assignment_at(world, state.now(), scope, name)
        if found is None:
            raise ArmError(
                404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found."
            )
        return ok(assignment_json(found))


def create_assignment(state: AzureState, call: Call) -> Reply:
    """Create a role assignment; the same role, principal and scope twice is a 409."""
    scope, name = clean_scope(call.params["scope"]), call.params["name"]
    properties = call.body.get("properties") or {}
    if not is_guid(name):
        raise ArmError(
            400,
            "InvalidRoleAssignmentId",
            f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.",
        )
    with state.locked() as world:
        check_scope(world, scope)
        role = role_or_error(world, str(properties.get("roleDefinitionId") or ""))
        principal_id = str(properties.get("principalId") or "")
        principal_type = _principal_type(world, principal_id, properties.get("principalType"))
        wanted = RoleAssignment(
            name=name.lower(),
            scope=scope,
            role_guid=role.guid,
            principal_id=principal_id,
            principal_type=principal_type,
            created_on=state.now(),
            description=properties.get("description"),
            condition=properties.get("condition"),
        )
        stored = world.role_assignments.get(name.lower())
        if stored is not None:
            if not _same_grant(stored, wanted):
                raise ArmError(
                    400,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be "
                    "updated.",
                )
            return ok(assignment_json(stored), 201)
        if any(_same_grant(held, wanted) for held, _ in world.effective_assignments(state.now())):
            raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
        world.role_assignments[wanted.name] = wanted
        return ok(assignment_json(wanted), 201)


def delete_assignment(state: AzureState, call: Call) -> Reply:
    """Delete a role assignment (200 with it); one that does not exist is a 204, as in Azure."""
    scope, name = clean_scope(call.params["scope"]), call.params["name"].lower()
    with state.locked() as world:
        found = _assignment_at(world, state.now(), scope, name)
        if found is None:
            return Reply(204)
        if world.role_assignments.pop(name, None) is None:
            # A PIM-made assignment: removing it ends its schedule, as PIM then shows.
            world.pim_schedules = {
                key: schedule
                for key, schedule in world.pim_schedules.items()
                if schedule.assignment_name != name
            }
        return ok(assignment_json(found))


def definition_json(scope: str, role: RoleDefinition) -> JsonObject:
    """Return a role definition as ARM shows it under `scope`."""
    return {
        "id": role_definition_id(scope, role.guid),
        "name": role.guid,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": role.role_name,
            "type": role.role_type,
            "description": role.description,
            "assignableScopes": list(role.assignable_scopes),
            "permissions": [
                {
                    "actions": list(role.actions),
                    "notActions": list(role.not_actions),
                    "dataActions": list(role.data_actions),
                    "notDataActions": list(role.not_data_actions),
                }
            ],
            "createdOn": timestamp(BUILT_IN_SINCE),
            "updatedOn": timestamp(BUILT_IN_SINCE),
            "createdBy": None,
            "updatedBy": None,
        },
    }


def assignment_json(assignment: RoleAssignment) -> JsonObject:
    """Return a role assignment as ARM shows it (api-version 2022-04-01)."""
    created = timestamp(assignment.created_on)
    return {
        "id": assignment.id,
        "name": assignment.name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": role_definition_id(assignment.scope, assignment.role_guid),
            "principalId": assignment.principal_id,
            "principalType": assignment.principal_type,
            "scope": assignment.scope or "/",
            "condition": assignment.condition,
            "conditionVersion": "2.0" if assignment.condition else None,
            "createdOn": created,
            "updatedOn": created,
            "createdBy": None,
            "updatedBy": None,
            "delegatedManagedIdentityResourceId": None,
            "description": assignment.description,
        },
    }


def principal_not_found(world: World, principal_id: str) -> ArmError:
    """Return the error ARM gives for a principal the directory does not hold."""
    return ArmError(
        400,
        "PrincipalNotFound",
        f"Principal {principal_id} does not exist in the directory {world.tenant_id}. Check that "
        "you have the correct principal ID. If you are creating this principal and then "
        "immediately assigning a role, this error might be related to a replication delay. In "
        "this case, set the role assignment principalType property to a value, such as "
        "ServicePrincipal, User, or Group. See https://aka.ms/docs-principaltype",
    )


def role_or_error(world: World, role_definition: str) -> RoleDefinition:
    """Return the role a roleDefinitionId names, or raise ARM's error for an unknown one."""
    role = world.role(role_definition) if role_definition else None
    if role is None:
        guid = role_definition.rstrip("/").rsplit("/", 1)[-1]
        raise ArmError(
            400,
            "RoleDefinitionDoesNotExist",
            f"The specified role definition with ID '{guid}' does not exist.",
        )
    return role


def _principal_type(world: World, principal_id: str, given: object) -> str:
    known = world.principal_type(principal_id) if principal_id else None
    if not isinstance(given, str) or not given:
        if known is None:
            raise principal_not_found(world, principal_id)
        return known
    # With principalType given ARM skips the directory look-up (it may lag); it checks a match.
    if known is not None and known.lower() != given.lower():
        raise ArmError(
            400,
            "UnmatchedPrincipalType",
            f"The PrincipalId '{principal_id}' has type '{known}', which is different from "
            f"specified PrincipalType '{given}'.",
        )
    return given


def _assignment_at(world: World, at: datetime, scope: str, name: str) -> RoleAssignment | None:
    return next(
        (
            assignment
            for assignment, _ in world.effective_assignments(at)
            if assignment.name.lower() == name.lower() and same_scope(assignment.scope, scope)
        ),
        None,
    )


def _same_grant(left: RoleAssignment, right: RoleAssignment) -> bool:
    return (
        same_scope(left.scope, right.scope)
        and left.role_guid == right.role_guid
        and left.principal_id.lower() == right.principal_id.lower()
    )


def _role_matches(role: RoleDefinition, field: str, value: str) -> bool:
    if field == "rolename":
        return role.role_name.lower() == value.lower()
    return value.lower() == role.role_type.lower()


def _visible(role: RoleDefinition, scope: str) -> bool:
    """A custom role shows where it can be assigned (and at the root); built-in roles always."""
    return (
        role.role_type != "CustomRole"
        or not scope
        or any(covers("" if s == "/" else s, scope) for s in role.assignable_scopes)
    )


def _clauses(call: Call) -> list[odata.Clause]:
    try:
        return odata.parse(call.filter())
    except odata.FilterError as error:
        raise _unsupported(call) from error


def _unsupported(call: Call) -> ArmError:
    return ArmError(400, "BadRequest", f"The filter '{call.filter()}' is not supported.")


ROUTES: tuple[Route, ...] = (
    arm("GET", _DEFINITIONS, ROLE_VERSIONS, list_definitions),
    arm("GET", rf"{_DEFINITIONS}/(?P<name>[^/]+)", ROLE_VERSIONS, get_definition),
    arm("PUT", rf"{_DEFINITIONS}/(?P<name>[^/]+)", ROLE_VERSIONS, create_definition),
    arm("GET", _ASSIGNMENTS, ROLE_VERSIONS, list_assignments),
    arm("GET", rf"{_ASSIGNMENTS}/(?P<name>[^/]+)", ROLE_VERSIONS, get_assignment),
    arm("PUT", rf"{_ASSIGNMENTS}/(?P<name>[^/]+)", ROLE_VERSIONS, create_assignment),
    arm("DELETE", rf"{_ASSIGNMENTS}/(?P<name>[^/]+)", ROLE_VERSIONS, delete_assignment),
)
