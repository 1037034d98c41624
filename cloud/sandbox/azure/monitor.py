"""The subscription activity log (Microsoft.Insights eventtypes/management, 2015-04-01)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cloud.sandbox.azure import odata
from cloud.sandbox.azure.server import Call, Reply, Route, arm, ok
from cloud.sandbox.azure.state import (
    ActivityEntry,
    ArmError,
    AzureState,
    JsonObject,
    World,
    check_scope,
    parse_time,
    timestamp,
)

MONITOR_VERSIONS = ("2015-04-01",)
RETENTION = timedelta(days=90)
# A query may start a little before the retention window (clients compute it on their clock).
START_SLACK = timedelta(days=1)
_RESOURCE_GROUP = re.compile(r"/resourceGroups/(?P<name>[^/]+)", re.IGNORECASE)
_PROVIDER = re.compile(r"/providers/(?P<namespace>[^/]+)/(?P<type>[^/]+)", re.IGNORECASE)
_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
_EQUALS: dict[str, Callable[[ActivityEntry], str]] = {
    "resourcegroupname": lambda entry: _group(entry.resource_id),
    "resourceuri": lambda entry: entry.resource_id,
    "resourceid": lambda entry: entry.resource_id,
    "resourceprovider": lambda entry: entry.operation_name.split("/", 1)[0],
    "correlationid": lambda entry: entry.correlation_id,
    "caller": lambda entry: entry.caller_id,
    "status": lambda entry: "Succeeded",
}


def list_events(state: AzureState, call: Call) -> Reply:
    """List a subscription's management events in a time window, newest first."""
    subscription_id = call.params["subscription"]
    now = state.now()
    start, end, tests = _read_filter(call.filter(), now)
    select = [name.strip() for name in call.query.get("$select", "").split(",") if name.strip()]
    with state.locked() as world:
        check_scope(world, f"/subscriptions/{subscription_id}")
        entries = sorted(
            (
                entry
                for entry in world.activity
                if entry.subscription_id.lower() == subscription_id.lower()
                and max(start, now - RETENTION) <= entry.at <= end
                and all(test(entry) for test in tests)
            ),
            key=lambda entry: entry.at,
            reverse=True,
        )
        return ok({"value": [_project(event_json(world, entry), select) for entry in entries]})


def event_json(world: World, entry: ActivityEntry) -> JsonObject:
    """Return an activity log entry as the API shows it (EventData)."""
    caller = world.service_principals.get(entry.caller_id.lower())
    app_id = caller.app_id if caller else entry.caller_id
    provider = _PROVIDER.search(entry.resource_id)
    namespace = provider["namespace"] if provider else "Microsoft.Resources"
    resource_type = (
        f"{namespace}/{provider['type']}" if provider else "Microsoft.Resources/subscriptions"
    )
    ticks = int((entry.at - _EPOCH).total_seconds() * 10_000_000)
    issued = int(entry.at.timestamp()) - 300
    issuer = f"https://sts.windows.net/{world.tenant_id}/"
    return {
        "authorization": {"action": entry.operation_name, "scope": entry.resource_id},
        "caller": entry.caller_id,
        "channels": "Operation",
        "claims": {
            "aud": "https://management.core.windows.net/",
            "iss": issuer,
            "iat": str(issued),
            "nbf": str(issued),
            "exp": str(issued + 3600),
            "aio": "emulator",
            "appid": app_id,
            "appidacr": "2",
            "idtyp": "app",
            "http://schemas.microsoft.com/identity/claims/identityprovider": issuer,
            "http://schemas.microsoft.com/identity/claims/objectidentifier": entry.caller_id,
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier": entry.caller_id,
            "http://schemas.microsoft.com/identity/claims/tenantid": world.tenant_id,
            "ver": "1.0",
        },
        "correlationId": entry.correlation_id,
        "description": "",
        "eventDataId": entry.event_data_id,
        "eventName": {"value": "EndRequest", "localizedValue": "End request"},
        "category": {"value": "Administrative", "localizedValue": "Administrative"},
        "httpRequest": {
            "clientRequestId": entry.correlation_id,
            "clientIpAddress": "203.0.113.10",
            "method": _method(entry.operation_name),
        },
        "id": f"{entry.resource_id}/events/{entry.event_data_id}/ticks/{ticks}",
        "level": "Informational",
        "resourceGroupName": _group(entry.resource_id),
        "resourceProviderName": {"value": namespace, "localizedValue": namespace},
        "resourceId": entry.resource_id,
        "resourceType": {"value": resource_type, "localizedValue": resource_type},
        "operationId": entry.correlation_id,
        "operationName": {"value": entry.operation_name, "localizedValue": entry.operation_name},
        "properties": {"statusCode": "OK", "serviceRequestId": entry.event_data_id},
        "status": {"value": "Succeeded", "localizedValue": "Succeeded"},
        "subStatus": {"value": "OK", "localizedValue": "OK (HTTP Status Code: 200)"},
        "eventTimestamp": timestamp(entry.at),
        "submissionTimestamp": timestamp(entry.at + timedelta(seconds=12)),
        "subscriptionId": entry.subscription_id,
        "tenantId": world.tenant_id,
    }


def _read_filter(
    text: str | None, now: datetime
) -> tuple[datetime, datetime, list[Callable[[ActivityEntry], bool]]]:
    try:
        clauses = odata.parse(text)
    except odata.FilterError as error:
        raise _bad_filter(text) from error
    start, end = None, now
    tests: list[Callable[[ActivityEntry], bool]] = []
    for clause in clauses:
        name, value = clause.field.lower(), clause.values[0] if clause.values else ""
        try:
            if name == "eventtimestamp" and clause.op in ("ge", "gt"):
                start = parse_time(value)
            elif name == "eventtimestamp" and clause.op in ("le", "lt"):
                end = parse_time(value)
            elif clause.op == "eq" and name in _EQUALS:
                tests.append(_equals(_EQUALS[name], value))
            elif clause.op == "eq" and name == "levels":
                tests.append(_listed("Informational", value))
            elif not (clause.op == "eq" and name == "eventchannels"):
                raise _bad_filter(text)
        except ValueError as error:
            raise _bad_filter(text) from error
    if start is None:
        raise ArmError(
            400, "BadRequest", "The $filter must give a start time: eventTimestamp ge '...'."
        )
    if start < now - RETENTION - START_SLACK:
        raise ArmError(
            400,
            "BadRequest",
            f"The start time {timestamp(start)} is more than 90 days ago; the activity log keeps "
            "90 days of events.",
        )
    return start, end, tests


def _equals(read: Callable[[ActivityEntry], str], value: str) -> Callable[[ActivityEntry], bool]:
    return lambda entry: read(entry).lower() == value.lower()


def _listed(level: str, value: str) -> Callable[[ActivityEntry], bool]:
    present = level.lower() in {part.strip().lower() for part in value.split(",")}
    return lambda entry: present


def _project(event: JsonObject, select: list[str]) -> JsonObject:
    if not select:
        return event
    wanted = {name.lower() for name in select}
    return {key: value for key, value in event.items() if key.lower() in wanted}


def _group(resource_id: str) -> str:
    match = _RESOURCE_GROUP.search(resource_id)
    return match["name"] if match else ""


def _method(operation_name: str) -> str:
    verb = operation_name.rsplit("/", 1)[-1].lower()
    return {"read": "GET", "write": "PUT", "delete": "DELETE"}.get(verb, "POST")


def _bad_filter(text: str | None) -> ArmError:
    return ArmError(400, "BadRequest", f"The $filter '{text}' is not supported.")


ROUTES: tuple[Route, ...] = (
    arm(
        "GET",
        r"/subscriptions/(?P<subscription>[^/]+)/providers/Microsoft\.Insights"
        r"/eventtypes/management/values",
        MONITOR_VERSIONS,
        list_events,
    ),
)
