"""Custom roles of projects and the organization: created, edited and read as IAM admin does.

Google's rules (IAM "Create and manage custom roles", the `CreateRole` reference): a role id is
1 to 64 letters, digits, underscores and periods; a role holds at most 3,000 permissions, each a
permission name; the parent is `projects/{id}` or `organizations/{number}`; a second role of
the same id is ALREADY_EXISTS. A project may be named by id or number; names come back with
the id. What the emulator does not check is which permissions custom roles support.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

from cloud.sandbox.gcp.state import ApiError, CustomRole, GcpState, Status, World

MAX_PERMISSIONS = 3000
_ROLE_ID = re.compile(r"[A-Za-z0-9_.]{1,64}")
_PERMISSION = re.compile(r"[a-z][a-z0-9]*(?:\.[a-z][a-zA-Z0-9_]*){1,2}\.[a-zA-Z][a-zA-Z0-9]*")
_NAME = re.compile(r"(?P<parent>(?:projects|organizations)/[^/]+)/roles/(?P<id>[^/]+)")


def _parent(world: World, parent: str) -> str:
    """Return the parent as names show it, or raise as IAM does for an unknown one."""
    collection, _, ref = parent.partition("/")
    if collection == "projects":
        project = world.project(ref)
        if project is not None:
            return f"projects/{project.project_id}"
    elif collection == "organizations" and parent == world.organization.name:
        return parent
    raise ApiError(
        Status.INVALID_ARGUMENT
        if collection not in ("projects", "organizations")
        else Status.NOT_FOUND,
        f"Parent {parent!r} is not a project or organization this service knows.",
    )


def find(world: World, name: str) -> CustomRole | None:
    """Return the custom role `name` names (its project by id or number), or None."""
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    try:
        parent = _parent(world, match["parent"])
    except ApiError:
        return None
    return world.custom_roles.get(f"{parent}/roles/{match['id']}")


def _checked(permissions: Iterable[str]) -> tuple[str, ...]:
    unique = tuple(dict.fromkeys(permissions))
    if len(unique) > MAX_PERMISSIONS:
        raise ApiError(
            Status.INVALID_ARGUMENT,
            f"A custom role holds at most {MAX_PERMISSIONS} permissions; this has {len(unique)}.",
        )
    for permission in unique:
        if not _PERMISSION.fullmatch(permission):
            raise ApiError(Status.INVALID_ARGUMENT, f"Permission {permission} is not valid.")
    return unique


def _etag(state: GcpState) -> str:
    return base64.b64encode(f"BwY{state.sequence():08d}".encode()).decode()


def create(
    state: GcpState,
    world: World,
    *,
    parent: str,
    role_id: str,
    permissions: Iterable[str],
    title: str = "",
    description: str = "",
) -> CustomRole:
    """Create a custom role under `parent`, refusing what IAM refuses."""
    if not _ROLE_ID.fullmatch(role_id):
        raise ApiError(
            Status.INVALID_ARGUMENT,
            f"Invalid role id {role_id!r}: 1 to 64 letters, digits, underscores or periods.",
        )
    name = f"{_parent(world, parent)}/roles/{role_id}"
    if name in world.custom_roles:
        raise ApiError(Status.ALREADY_EXISTS, f"A role named {role_id} in {parent} already exists.")
    role = CustomRole(name, title or role_id, description, _checked(permissions), _etag(state))
    world.custom_roles[name] = role
    return role


def edit(state: GcpState, world: World, name: str, permissions: Iterable[str]) -> CustomRole:
    """Replace a custom role's permissions, as `UpdateRole` with `included_permissions` does."""
    role = find(world, name)
    if role is None:
        raise ApiError(Status.NOT_FOUND, f"The role named {name} was not found.")
    role.permissions = _checked(permissions)
    role.etag = _etag(state)
    return role
