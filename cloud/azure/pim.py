"""PIM (Entra ID Privileged Identity Management) role assignment schedules for Leash's grants.

A grant is one `AdminAssign` schedule request per role and scope, whose schedule ends at the
grant's expiry (`AfterDateTime`): Azure itself ends the assignment then. The request's
`justification` carries the `leash-grant-<id>` marker and its name is a GUID derived from the
grant, role and scope. A grant is live while a schedule made by such a request is listed and
has not ended. There is no delete: revoking is an `AdminRemove` request. PIM refuses
assignments shorter than 5 minutes, and a tenant without the Entra ID P2 licence answers
every PIM call with `AadPremiumLicenseRequired` (then grants fall back to plain assignments).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.mgmt.authorization.v2020_10_01.models import (
    RoleAssignmentScheduleRequest,
    RoleAssignmentScheduleRequestPropertiesScheduleInfo,
    RoleAssignmentScheduleRequestPropertiesScheduleInfoExpiration,
)

from cloud.azure.assignments import grant_guid, grant_of, marker, subscription_scope
from cloud.azure.clients import AzureClients
from cloud.azure.errors import error_code, is_not_found, is_pim_unlicensed
from cloud.azure.roles import role_guid
from cloud.base import CloudConflictError, CloudError, CloudThrottledError, grant_artefact_name

EXPIRY_MECHANISM = "azure-pim-schedule"
MINIMUM_DURATION = timedelta(minutes=5)
ASSIGN = "AdminAssign"
REMOVE = "AdminRemove"
# Request states that mean PIM did not (and will not) put the assignment in place.
FAILED_STATES = frozenset(
    {
        "denied",
        "failed",
        "canceled",
        "invalid",
        "admindenied",
        "timedout",
        "failedasresourceislocked",
        "revoked",
    }
)
GONE_CODES = frozenset({"RoleAssignmentDoesNotExist", "RoleAssignmentNotFound"})


@dataclass(frozen=True, slots=True)
class PimGrant:
    """One live role assignment schedule that a Leash grant requested."""

    grant_id: str
    principal_id: str
    role_definition_id: str
    scope: str
    request_name: str
    ends_at: datetime | None

    def key(self) -> tuple[str, str]:
        """Return the role and scope it assigns, as `Assignment.key` spells them."""
        return role_guid(self.role_definition_id), self.scope.rstrip("/").lower()


def _aware(moment: Any) -> datetime | None:
    if not isinstance(moment, datetime):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _principal_filter(principal_id: str | None) -> str | None:
    return f"principalId eq '{principal_id}'" if principal_id else None


def _requests(clients: AzureClients, subscription_id: str, principal_id: str | None) -> list[Any]:
    client = clients.authorization(subscription_id)
    scope = subscription_scope(subscription_id)
    return clients.call(
        "roleAssignmentScheduleRequests.listForScope",
        f"subscription {subscription_id}",
        lambda: list(
            client.role_assignment_schedule_requests.list_for_scope(
                scope, filter=_principal_filter(principal_id)
            )
        ),
    )


def _schedules(clients: AzureClients, subscription_id: str, principal_id: str | None) -> list[Any]:
    client = clients.authorization(subscription_id)
    scope = subscription_scope(subscription_id)
    return clients.call(
        "roleAssignmentSchedules.listForScope",
        f"subscription {subscription_id}",
        lambda: list(
            client.role_assignment_schedules.list_for_scope(
                scope, filter=_principal_filter(principal_id)
            )
        ),
    )


def is_available(clients: AzureClients, subscription_id: str) -> bool:
    """Say whether PIM answers in the subscription's tenant (False: no licence)."""
    try:
        _requests(clients, subscription_id, "00000000-0000-0000-0000-000000000000")
    except CloudError as error:
        if is_pim_unlicensed(error):
            return False
        raise
    return True


def _tail(resource_id: str | None) -> str:
    return (resource_id or "").rstrip("/").rsplit("/", 1)[-1].lower()


def live_grants(
    clients: AzureClients, subscription_id: str, principal_id: str | None, *, now: datetime
) -> list[PimGrant]:
    """List the schedules Leash's requests made that have not ended (of one principal)."""
    ours = {
        _tail(request.name): request
        for request in _requests(clients, subscription_id, principal_id)
        if str(request.request_type or "").lower() == ASSIGN.lower()
        and grant_of(request.justification) is not None
        and (principal_id is None or str(request.principal_id).lower() == principal_id.lower())
    }
    if not ours:
        return []
    found: list[PimGrant] = []
    for schedule in _schedules(clients, subscription_id, principal_id):
        ends_at = _aware(schedule.end_date_time)
        if ends_at is not None and ends_at <= now:
            continue
        request = ours.get(_tail(schedule.role_assignment_schedule_request_id))
        if request is None:  # a permanent assignment, or a schedule someone else requested
            continue
        found.append(
            PimGrant(
                grant_id=str(grant_of(request.justification)),
                principal_id=str(schedule.principal_id),
                role_definition_id=str(schedule.role_definition_id),
                scope=str(schedule.scope or request.scope),
                request_name=_tail(request.name),
                ends_at=ends_at,
            )
        )
    return found


def assign(
    clients: AzureClients,
    subscription_id: str,
    *,
    principal_id: str,
    role_definition_id: str,
    scope: str,
    grant_id: str,
    starts_at: datetime,
    expires_at: datetime,
) -> str:
    """Ask PIM to assign the role at the scope from `starts_at` until `expires_at`."""
    name = grant_guid(grant_id, role_guid(role_definition_id), scope, ASSIGN)
    request = RoleAssignmentScheduleRequest(
        role_definition_id=role_definition_id,
        principal_id=principal_id,
        request_type=ASSIGN,
        justification=marker(grant_id, expires_at),
        schedule_info=RoleAssignmentScheduleRequestPropertiesScheduleInfo(
            start_date_time=starts_at.astimezone(UTC),
            expiration=RoleAssignmentScheduleRequestPropertiesScheduleInfoExpiration(
                type="AfterDateTime", end_date_time=expires_at.astimezone(UTC)
            ),
        ),
    )
    client = clients.authorization(subscription_id)
    answer = clients.call(
        "roleAssignmentScheduleRequests.create",
        f"{scope} (principal {principal_id})",
        lambda: client.role_assignment_schedule_requests.create(scope, name, request),
    )
    status = str(getattr(answer, "status", "") or "")
    if status.lower() in FAILED_STATES:
        raise CloudError(
            f"PIM answered {status} to grant {grant_id} at {scope} for principal {principal_id}",
            code=f"Pim{status}",
        )
    return name


def remove(clients: AzureClients, subscription_id: str, grant: PimGrant) -> bool:
    """Ask PIM to end a live grant schedule; False when Azure says it is already gone."""
    name = grant_guid(grant.grant_id, grant.request_name, grant.scope, REMOVE)
    request = RoleAssignmentScheduleRequest(
        role_definition_id=grant.role_definition_id,
        principal_id=grant.principal_id,
        request_type=REMOVE,
        justification=f"Leash ends {grant_artefact_name(grant.grant_id)}",
    )
    client = clients.authorization(subscription_id)
    try:
        clients.call(
            "roleAssignmentScheduleRequests.create",
            f"{grant.scope} (principal {grant.principal_id}, removal)",
            lambda: client.role_assignment_schedule_requests.create(grant.scope, name, request),
        )
    except CloudError as error:
        if is_not_found(error) or error_code(error) in GONE_CODES:
            return False
        if isinstance(error, CloudConflictError):  # this very removal was asked for already
            return False
        if error_code(error) == "ActiveDurationTooShort":
            raise CloudThrottledError(
                f"PIM refuses to end {grant_artefact_name(grant.grant_id)} within 5 minutes of "
                "its start; try again shortly",
                code="ActiveDurationTooShort",
            ) from error
        raise
    return True
