"""PIM schedules: validating a requested window and carrying out assign, remove and update."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from cloud.sandbox.azure.state import (
    ArmError,
    PimRequest,
    PimSchedule,
    RoleAssignment,
    World,
    new_guid,
    parse_time,
    same_scope,
    timestamp,
)

MINIMUM = timedelta(minutes=5)
MAXIMUM = timedelta(days=180)  # the default role management policy for active assignments
_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Entry:
    """An assignment as PIM lists it: a schedule and, while it runs, an instance."""

    schedule_name: str
    instance_name: str
    assignment: RoleAssignment
    start: datetime
    end: datetime | None
    request_name: str | None


def parse_duration(text: str) -> timedelta:
    """Parse an ISO 8601 duration of weeks, days, hours, minutes and seconds."""
    match = _DURATION.fullmatch(text.strip()) if text else None
    if match is None or not any(match.groupdict().values()):
        raise ArmError(
            400, "BadRequest", f"The duration '{text}' is not a valid ISO 8601 duration."
        )
    parts = {key: float(value) for key, value in match.groupdict().items() if value}
    return timedelta(**parts)


def assign(world: World, request: PimRequest, now: datetime) -> None:
    """Start a schedule for an AdminAssign; the same grant at the same scope twice is refused."""
    start, end = _window(request, None, now)
    if _find(world, request, now) is not None:
        raise ArmError(400, "RoleAssignmentExists", "The Role assignment already exists.")
    schedule = PimSchedule(
        name=request.name,
        instance_name=new_guid(),
        assignment_name=new_guid(),
        scope=request.scope,
        role_guid=request.role_guid,
        principal_id=request.principal_id,
        principal_type=request.principal_type,
        start=start,
        end=end,
        created_on=now,
    )
    world.pim_schedules[schedule.name] = schedule
    request.schedule_name, request.instance_name = schedule.name, schedule.instance_name


def remove(world: World, request: PimRequest, now: datetime) -> None:
    """End the schedule (or the permanent assignment) an AdminRemove names."""
    found = _find(world, request, now)
    if found is None:
        raise ArmError(400, "RoleAssignmentDoesNotExist", "The Role assignment does not exist.")
    if isinstance(found, PimSchedule):
        del world.pim_schedules[found.name]
        request.schedule_name = found.name
    else:
        del world.role_assignments[found.name.lower()]
    request.status = "Revoked"


def update(world: World, request: PimRequest, now: datetime) -> None:
    """Give a running or coming schedule the new window of an AdminUpdate/Extend/Renew."""
    found = _find(world, request, now)
    if not isinstance(found, PimSchedule):
        raise ArmError(400, "RoleAssignmentDoesNotExist", "The Role assignment does not exist.")
    found.start, found.end = _window(request, found.start, now)
    request.schedule_name, request.instance_name = found.name, found.instance_name


def _window(
    request: PimRequest, default_start: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    info = request.schedule_info
    expiration = info.get("expiration") or {}
    try:
        start = parse_time(info["startDateTime"]) if info.get("startDateTime") else None
        start = start or default_start or now
        kind = str(expiration.get("type") or "NoExpiration").lower()
        if kind == "afterduration":
            end = start + parse_duration(str(expiration.get("duration") or ""))
        elif kind == "afterdatetime":
            end = parse_time(str(expiration.get("endDateTime")))
        else:
            # The default policy does not allow permanent active assignments through PIM.
            raise policy_failed("ExpirationRule")
    except ValueError as error:
        raise ArmError(400, "BadRequest", f"The schedule is not valid: {error}.") from error
    if end - start < MINIMUM:
        raise ArmError(
            400,
            "ActiveDurationTooShort",
            "The Active duration is too short. Miniumum Required is 5 minutes.",
        )
    if end - start > MAXIMUM:
        raise policy_failed("ExpirationRule")
    request.schedule_info = {
        "startDateTime": timestamp(start),
        "expiration": {
            "type": expiration.get("type"),
            "endDateTime": timestamp(end) if kind == "afterdatetime" else None,
            "duration": expiration.get("duration") if kind == "afterduration" else None,
        },
    }
    return start, end


def _find(world: World, request: PimRequest, now: datetime) -> PimSchedule | RoleAssignment | None:
    """Return the running or coming schedule, or else the plain assignment, for this grant."""

    def same(scope: str, role_guid: str, principal_id: str) -> bool:
        return (
            same_scope(scope, request.scope)
            and role_guid == request.role_guid
            and principal_id.lower() == request.principal_id.lower()
        )

    for schedule in world.pim_schedules.values():
        if schedule.end > now and same(schedule.scope, schedule.role_guid, schedule.principal_id):
            return schedule
    return next(
        (
            assignment
            for assignment in world.role_assignments.values()
            if same(assignment.scope, assignment.role_guid, assignment.principal_id)
        ),
        None,
    )


def entries(world: World, now: datetime, *, instances: bool) -> list[Entry]:
    """Return what PIM lists: permanent assignments, then schedules not ended (or running)."""
    permanent = [
        Entry(
            str(uuid.uuid5(uuid.NAMESPACE_URL, assignment.id.lower())),
            str(uuid.uuid5(uuid.NAMESPACE_URL, assignment.id.lower() + "/instance")),
            assignment,
            assignment.created_on,
            None,
            None,
        )
        for assignment in world.role_assignments.values()
    ]
    return permanent + [
        Entry(s.name, s.instance_name, s.assignment(), s.start, s.end, s.name)
        for s in world.pim_schedules.values()
        if (s.active(now) if instances else s.end > now)
    ]


def policy_failed(rule: str) -> ArmError:
    """Return the error PIM gives when a request breaks a role management policy rule."""
    return ArmError(
        400,
        "RoleAssignmentRequestPolicyValidationFailed",
        f'The following policy rules failed: ["{rule}"]',
    )
