"""PIM for Azure resources: role assignment schedule requests, schedules and instances (2020-10-01).

Time-bound assignments follow the emulator's clock: an instance whose window no longer contains
now is neither listed nor in force. Permanent role assignments are listed as schedules and
instances with no end, as PIM shows them. A subscription without PIM answers every PIM call the
way a tenant without a Microsoft Entra ID P2 (or ID Governance) licence does.
"""

from __future__ import annotations

from collections.abc import Callable

from cloud.sandbox.azure import odata
from cloud.sandbox.azure.authorization import principal_not_found, role_or_error
from cloud.sandbox.azure.schedules import Entry, assign, entries, policy_failed, remove, update
from cloud.sandbox.azure.server import Call, Reply, Route, arm, ok
from cloud.sandbox.azure.state import (
    AUTHORIZATION,
    ArmError,
    AzureState,
    JsonObject,
    PimRequest,
    RoleAssignment,
    World,
    check_scope,
    clean_scope,
    covers,
    role_definition_id,
    same_scope,
    subscription_of,
    timestamp,
)

PIM_VERSIONS = ("2020-10-01", "2020-10-01-preview")
_SCOPE = r"(?P<scope>(?:/[^/]+)*?)/providers/Microsoft\.Authorization"
Keep = Callable[[str, str, str], bool]


def licence_required() -> ArmError:
    """Return the error PIM gives in a tenant without an Entra ID P2 or Governance licence."""
    return ArmError(400, "AadPremiumLicenseRequired", "The tenant needs an AAD Premium 2 license.")


def create_request(state: AzureState, call: Call) -> Reply:
    """Carry out an AdminAssign, AdminRemove or AdminUpdate/Extend/Renew request at once."""
    scope, name = clean_scope(call.params["scope"]), call.params["name"].lower()
    properties = call.body.get("properties") or {}
    kind = str(properties.get("requestType") or "").lower()
    with state.locked() as world:
        _check(world, scope)
        if name in world.pim_requests:
            return ok(_request_json(world, world.pim_requests[name]), 201)
        role = role_or_error(world, str(properties.get("roleDefinitionId") or ""))
        principal_id = str(properties.get("principalId") or "")
        principal_type = world.principal_type(principal_id) if principal_id else None
        if principal_type is None:
            raise principal_not_found(world, principal_id)
        now = state.now()
        request = PimRequest(
            name=name,
            scope=scope,
            role_guid=role.guid,
            principal_id=principal_id,
            principal_type=principal_type,
            request_type=str(properties.get("requestType")),
            status="Provisioned",
            schedule_info=properties.get("scheduleInfo") or {},
            justification=properties.get("justification"),
            created_on=now,
            schedule_name=None,
            instance_name=None,
        )
        if kind == "adminassign":
            assign(world, request, now)
        elif kind == "adminremove":
            remove(world, request, now)
        elif kind in ("adminupdate", "adminextend", "adminrenew"):
            update(world, request, now)
        elif kind.startswith("self"):
            # The emulator holds no eligible assignments, so there is nothing to activate.
            raise policy_failed("EligibilityRule")
        else:
            raise ArmError(400, "BadRequest", f"The request type '{kind}' is not valid.")
        world.pim_requests[name] = request
        return ok(_request_json(world, request), 201)


def get_request(state: AzureState, call: Call) -> Reply:
    """Return one schedule request."""
    scope = clean_scope(call.params["scope"])
    with state.locked() as world:
        _check(world, scope)
        request = world.pim_requests.get(call.params["name"].lower())
        if request is None or not same_scope(request.scope, scope):
            raise _not_found("RoleAssignmentScheduleRequest", call.params["name"])
        return ok(_request_json(world, request))


def list_requests(state: AzureState, call: Call) -> Reply:
    """List the schedule requests at, above and below a scope (or as filtered)."""
    scope = clean_scope(call.params["scope"])
    keep = _filter(call, scope)
    with state.locked() as world:
        _check(world, scope)
        found = [
            _request_json(world, request)
            for request in world.pim_requests.values()
            if keep(request.scope, request.principal_id, request.role_guid)
        ]
        return ok({"value": found})


def list_schedules(state: AzureState, call: Call) -> Reply:
    """List the schedules that have not ended, permanent assignments included."""
    return _list(state, call, instances=False)


def list_instances(state: AzureState, call: Call) -> Reply:
    """List the instances in force now, permanent assignments included."""
    return _list(state, call, instances=True)


def get_schedule(state: AzureState, call: Call) -> Reply:
    """Return one schedule that has not ended."""
    return _get(state, call, instances=False)


def get_instance(state: AzureState, call: Call) -> Reply:
    """Return one instance in force now."""
    return _get(state, call, instances=True)


def _list(state: AzureState, call: Call, *, instances: bool) -> Reply:
    scope = clean_scope(call.params["scope"])
    keep = _filter(call, scope)
    with state.locked() as world:
        _check(world, scope)
        found = [
            _entry_json(world, entry, instances=instances)
            for entry in entries(world, state.now(), instances=instances)
            if keep(
                entry.assignment.scope, entry.assignment.principal_id, entry.assignment.role_guid
            )
        ]
        return ok({"value": found})


def _get(state: AzureState, call: Call, *, instances: bool) -> Reply:
    scope, name = clean_scope(call.params["scope"]), call.params["name"].lower()
    with state.locked() as world:
        _check(world, scope)
        for entry in entries(world, state.now(), instances=instances):
            entry_name = entry.instance_name if instances else entry.schedule_name
            if entry_name == name and same_scope(entry.assignment.scope, scope):
                return ok(_entry_json(world, entry, instances=instances))
    kind = "RoleAssignmentScheduleInstance" if instances else "RoleAssignmentSchedule"
    raise _not_found(kind, call.params["name"])


def _entry_json(world: World, entry: Entry, *, instances: bool) -> JsonObject:
    assignment = entry.assignment
    base = f"{assignment.scope}{AUTHORIZATION}"
    schedule_id = f"{base}/roleAssignmentSchedules/{entry.schedule_name}"
    properties: JsonObject = {
        "scope": assignment.scope or "/",
        "roleDefinitionId": role_definition_id(assignment.scope, assignment.role_guid),
        "principalId": assignment.principal_id,
        "principalType": assignment.principal_type,
        "status": "Provisioned",
        "startDateTime": timestamp(entry.start),
        "endDateTime": timestamp(entry.end) if entry.end else None,
        "linkedRoleEligibilityScheduleId": None,
        "assignmentType": "Assigned",
        "memberType": "Direct",
        "condition": assignment.condition,
        "conditionVersion": "2.0" if assignment.condition else None,
        "createdOn": timestamp(entry.start),
        "expandedProperties": _expanded(world, assignment),
    }
    if instances:
        properties |= {
            "roleAssignmentScheduleId": schedule_id,
            "originRoleAssignmentId": assignment.id,
            "linkedRoleEligibilityScheduleInstanceId": None,
        }
        name, kind = entry.instance_name, "roleAssignmentScheduleInstances"
    else:
        request_id = (
            entry.request_name and f"{base}/roleAssignmentScheduleRequests/{entry.request_name}"
        )
        properties |= {"roleAssignmentScheduleRequestId": request_id, "updatedOn": None}
        name, kind = entry.schedule_name, "roleAssignmentSchedules"
    return {
        "id": f"{base}/{kind}/{name}",
        "name": name,
        "type": f"Microsoft.Authorization/{kind}",
        "properties": properties,
    }


def _request_json(world: World, request: PimRequest) -> JsonObject:
    base = f"{request.scope}{AUTHORIZATION}"
    schedule = request.schedule_name and f"{base}/roleAssignmentSchedules/{request.schedule_name}"
    instance = (
        request.instance_name and f"{base}/roleAssignmentScheduleInstances/{request.instance_name}"
    )
    assignment = RoleAssignment(
        request.name,
        request.scope,
        request.role_guid,
        request.principal_id,
        request.principal_type,
        request.created_on,
    )
    return {
        "id": f"{base}/roleAssignmentScheduleRequests/{request.name}",
        "name": request.name,
        "type": "Microsoft.Authorization/RoleAssignmentScheduleRequests",
        "properties": {
            "scope": request.scope or "/",
            "roleDefinitionId": role_definition_id(request.scope, request.role_guid),
            "principalId": request.principal_id,
            "principalType": request.principal_type,
            "requestType": request.request_type,
            "status": request.status,
            "approvalId": None,
            "targetRoleAssignmentScheduleId": schedule or None,
            "targetRoleAssignmentScheduleInstanceId": instance or None,
            "scheduleInfo": request.schedule_info,
            "linkedRoleEligibilityScheduleId": None,
            "justification": request.justification,
            "ticketInfo": {"ticketNumber": None, "ticketSystem": None},
            "condition": None,
            "conditionVersion": None,
            "createdOn": timestamp(request.created_on),
            "requestorId": None,
            "expandedProperties": _expanded(world, assignment),
        },
    }


def _expanded(world: World, assignment: RoleAssignment) -> JsonObject:
    role = world.role_definitions[assignment.role_guid]
    scope = assignment.scope
    depth = len([part for part in scope.split("/") if part])
    scope_type = {0: "root", 2: "subscription", 4: "resourcegroup"}.get(depth, "resource")
    subscription = world.subscription(subscription_of(scope) or "")
    display = subscription.display_name if depth == 2 and subscription else scope.rsplit("/", 1)[-1]
    return {
        "scope": {"id": scope or "/", "displayName": display, "type": scope_type},
        "roleDefinition": {
            "id": role_definition_id(scope, role.guid),
            "displayName": role.role_name,
            "type": "BuiltInRole",
        },
        "principal": {
            "id": assignment.principal_id,
            "displayName": world.display_name(assignment.principal_id),
            "email": None,
            "type": assignment.principal_type,
        },
    }


def _check(world: World, scope: str) -> None:
    check_scope(world, scope)
    subscription = world.subscription(subscription_of(scope) or "")
    if subscription is not None and not subscription.pim_enabled:
        raise licence_required()


def _filter(call: Call, scope: str) -> Keep:
    try:
        clauses = odata.parse(call.filter())
    except odata.FilterError as error:
        raise _bad_filter(call) from error
    at_scope, principal, role = False, None, None
    for clause in clauses:
        name = clause.field.lower()
        if clause.op == "call" and name == "atscope" and not clause.values:
            at_scope = True
        elif _names_principal(clause, name):
            principal = clause.values[0].lower()
        elif clause.op == "eq" and name == "roledefinitionid":
            role = clause.values[0].rstrip("/").rsplit("/", 1)[-1].lower()
        else:
            raise _bad_filter(call)

    def keep(item_scope: str, principal_id: str, role_guid: str) -> bool:
        in_scope = covers(item_scope, scope) or (not at_scope and covers(scope, item_scope))
        return (
            in_scope
            and principal in (None, principal_id.lower())
            and role in (None, role_guid.lower())
        )

    return keep


def _names_principal(clause: odata.Clause, name: str) -> bool:
    """Say whether a clause is `principalId eq '…'` or `assignedTo('…')`."""
    return (clause.op == "eq" and name == "principalid") or (
        clause.op == "call" and name == "assignedto" and len(clause.values) == 1
    )


def _not_found(kind: str, name: str) -> ArmError:
    return ArmError(404, f"{kind}NotFound", f"The {kind} '{name}' could not be found.")


def _bad_filter(call: Call) -> ArmError:
    return ArmError(400, "BadRequest", f"The filter '{call.filter()}' is not supported.")


ROUTES: tuple[Route, ...] = (
    arm(
        "PUT",
        rf"{_SCOPE}/roleAssignmentScheduleRequests/(?P<name>[^/]+)",
        PIM_VERSIONS,
        create_request,
    ),
    arm(
        "GET",
        rf"{_SCOPE}/roleAssignmentScheduleRequests/(?P<name>[^/]+)",
        PIM_VERSIONS,
        get_request,
    ),
    arm("GET", rf"{_SCOPE}/roleAssignmentScheduleRequests", PIM_VERSIONS, list_requests),
    arm("GET", rf"{_SCOPE}/roleAssignmentSchedules", PIM_VERSIONS, list_schedules),
    arm("GET", rf"{_SCOPE}/roleAssignmentSchedules/(?P<name>[^/]+)", PIM_VERSIONS, get_schedule),
    arm("GET", rf"{_SCOPE}/roleAssignmentScheduleInstances", PIM_VERSIONS, list_instances),
    arm(
        "GET",
        rf"{_SCOPE}/roleAssignmentScheduleInstances/(?P<name>[^/]+)",
        PIM_VERSIONS,
        get_instance,
    ),
)
