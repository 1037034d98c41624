"""GcpEmulator: the GCP APIs Leash uses, on loopback, for the real google-cloud clients."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any

from cloud.sandbox.gcp import custom_roles, deny, recommender, resource_manager
from cloud.sandbox.gcp.cel_eval import holds
from cloud.sandbox.gcp.iam_admin_grpc import GrpcServer
from cloud.sandbox.gcp.iam_policy import empty_policy, write_policy
from cloud.sandbox.gcp.recommender import PROJECT_TYPE, recommendation_name
from cloud.sandbox.gcp.rest import RestServer
from cloud.sandbox.gcp.seed import demo_world, empty_world, system_managed_key
from cloud.sandbox.gcp.state import (
    ApiCall,
    GcpState,
    JsonObject,
    Project,
    RoleRecommendation,
    ServiceAccount,
    ServiceAccountKey,
    World,
)
from cloud.sandbox.operation_log import CloudOperation

_ACCOUNT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")


class GcpEmulator:
    """Resource Manager, IAM v2 deny policies and Recommender over REST; IAM admin over gRPC."""

    def __init__(self, *, state: GcpState, rest: RestServer, grpc_server: GrpcServer) -> None:
        self._state = state
        self._rest = rest
        self._grpc = grpc_server

    @classmethod
    def start(cls, *, seed: bool = True) -> GcpEmulator:
        """Start the REST and gRPC servers on free loopback ports, seeded unless told not to."""
        state = GcpState(demo_world if seed else empty_world)
        routes = [*resource_manager.ROUTES, *deny.ROUTES, *recommender.ROUTES]
        rest = RestServer.start(state=state, routes=routes)
        try:
            grpc_server = GrpcServer.start(state=state)
        except BaseException:
            rest.stop()
            raise
        return cls(state=state, rest=rest, grpc_server=grpc_server)

    def stop(self) -> None:
        """Stop both servers."""
        self._grpc.stop()
        self._rest.stop()

    def reset(self) -> None:
        """Return to the state `start` built; forget calls, counters, pending conflicts, clock."""
        self._state.reset()

    def __enter__(self) -> GcpEmulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def rest_endpoint(self) -> str:
        return self._rest.endpoint

    @property
    def grpc_target(self) -> str:
        return self._grpc.target

    @property
    def organization(self) -> str:
        with self._state.locked() as world:
            return world.organization.name

    @property
    def project_ids(self) -> tuple[str, ...]:
        with self._state.locked() as world:
            return tuple(world.projects)

    @property
    def requests(self) -> list[ApiCall]:
        """Return every call received since start or reset, oldest first (a copy)."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def operations(self) -> list[CloudOperation]:
        """Return every operation served since start or reset, with its permission (a copy)."""
        with self._state.lock:
            return list(self._state.operations)

    @property
    def sets_without_etag(self) -> int:
        with self._state.lock:
            return self._state.sets_without_etag

    def project_number(self, project_id: str) -> str:
        """Return a project's number (Resource Manager and Recommender name projects by it)."""
        with self._state.locked() as world:
            return _project(world, project_id).number

    def now(self) -> datetime:
        """Return the emulator's time."""
        return self._state.now()

    def set_now(self, at: datetime | None) -> None:
        """Fix the emulator's clock at `at` (timezone-aware), or None for real time."""
        self._state.set_now(at)

    def conflict_next_sets(self, count: int) -> None:
        """Make the next `count` setIamPolicy calls lose to a concurrent writer (409 ABORTED)."""
        with self._state.lock:
            self._state.pending_conflicts = count

    def effective_roles(self, member: str, project_id: str, at: datetime | None = None) -> set[str]:
        """Return the roles `member` holds on a project at `at` (default now), inherited too."""
        # Conditions are evaluated here only, with CEL: request.time = at, resource.name =
        # "projects/{project_id}"; one that cannot be evaluated does not hold, as in IAM.
        if at is not None and at.tzinfo is None:
            raise ValueError("effective_roles needs a timezone-aware datetime")
        moment = at or self._state.now()
        with self._state.locked() as world:
            chain = world.ancestors(_project(world, project_id))
            bindings = [
                copy.deepcopy(binding)
                for resource in chain
                for binding in world.policies.get(resource, {}).get("bindings", [])
                if member in binding["members"]
            ]
        roles = set()
        for binding in bindings:
            condition = binding.get("condition")
            if condition is None or holds(
                condition.get("expression", ""),
                at=moment,
                resource_name=f"projects/{project_id}",
                resource_type=PROJECT_TYPE,
            ):
                roles.add(binding["role"])
        return roles

    def add_project(
        self,
        project_id: str,
        *,
        parent: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> str:
        """Create a project under `parent` (default: the organisation); return its number."""
        with self._state.locked() as world:
            if world.project(project_id) is not None:
                raise ValueError(f"project {project_id} exists")
            parent = parent or world.organization.name
            if parent not in world.folders and parent != world.organization.name:
                raise LookupError(f"no parent {parent}")
            number = str(400000000000 + self._state.sequence())
            world.projects[project_id] = Project(
                project_id, number, parent, project_id, dict(labels or {}), self._state.now()
            )
            return number

    def add_service_account(
        self,
        project_id: str,
        account_id: str,
        *,
        display_name: str = "",
        description: str = "",
        disabled: bool = False,
    ) -> str:
        """Create a service account (with its Google-managed key); return its email."""
        if not _ACCOUNT_ID.fullmatch(account_id):
            raise ValueError(f"invalid account id {account_id!r}: 6-30 of [a-z0-9-]")
        with self._state.locked() as world:
            project = _project(world, project_id)
            account = ServiceAccount(
                project_id=project.project_id,
                account_id=account_id,
                unique_id=str(100000000000000000000 + 1000 + self._state.sequence()),
                display_name=display_name,
                description=description,
                disabled=disabled,
            )
            if account.email in world.service_accounts:
                raise ValueError(f"service account {account.email} exists")
            world.service_accounts[account.email] = account
            world.keys[account.email] = [system_managed_key(account.email, self._state.now())]
            return account.email

    def add_service_account_key(self, email: str, *, valid_after: datetime | None = None) -> str:
        """Give a service account a user-managed key; return the key's resource name."""
        with self._state.locked() as world:
            account = _account(world, email)
            key_id = f"{self._state.sequence():040x}"
            after = valid_after or self._state.now()
            never = datetime(9999, 12, 31, 23, 59, 59, tzinfo=after.tzinfo)
            world.keys[email].append(ServiceAccountKey(key_id, True, after, never))
            return f"{account.name}/keys/{key_id}"

    def add_binding(
        self,
        project_id: str,
        role: str,
        member: str,
        *,
        condition: Mapping[str, str] | None = None,
    ) -> None:
        """Add a binding to a project's allow policy as another writer would (the etag moves)."""
        binding: JsonObject = {"role": role, "members": [member]}
        if condition:
            binding["condition"] = dict(condition)
        with self._state.locked() as world:
            key = f"projects/{_project(world, project_id).project_id}"
            stored = world.policies.setdefault(key, empty_policy(self._state.next_etag()))
            version = 3 if condition or stored.get("version") == 3 else 1
            world.policies[key] = write_policy(
                stored,
                {"version": version, "bindings": [*stored.get("bindings", []), binding]},
                update_mask=None,
                new_etag=self._state.next_etag(),
                account_exists=world.account_exists,
            )

    def add_custom_role(
        self,
        parent: str,
        role_id: str,
        permissions: Iterable[str],
        *,
        title: str = "",
    ) -> str:
        """Create a custom role under `projects/{id}` or the organization; return its name."""
        with self._state.locked() as world:
            role = custom_roles.create(
                self._state,
                world,
                parent=parent,
                role_id=role_id,
                permissions=permissions,
                title=title,
            )
            return role.name

    def edit_custom_role(self, name: str, permissions: Iterable[str]) -> None:
        """Replace a custom role's permissions, as another administrator would."""
        with self._state.locked() as world:
            custom_roles.edit(self._state, world, name, permissions)

    def set_recommendation(
        self,
        project_id: str,
        member: str,
        role: str,
        *,
        replacement_role: str | None = None,
        exercised: Iterable[str] = (),
        inferred: Iterable[str] = (),
        total_permissions: int = 30,
    ) -> str:
        """Recommend removing (or, given `replacement_role`, replacing) a role; return its name."""
        # The permission-usage insight (exercised, inferred) the recommendation cites comes too.
        with self._state.locked() as world:
            project = _project(world, project_id)
            recommendation = RoleRecommendation(
                project_id=project.project_id,
                member=member,
                role=role,
                replacement_role=replacement_role,
                exercised=tuple(exercised),
                inferred=tuple(inferred),
                total_permissions=total_permissions,
                refreshed_at=self._state.now(),
            )
            world.recommendations = [
                r
                for r in world.recommendations
                if (r.project_id, r.member, r.role) != (project.project_id, member, role)
            ] + [recommendation]
            return recommendation_name(project, recommendation)

    def clear_recommendations(self, project_id: str | None = None) -> None:
        """Drop the recommendations (and permission insights) of one project, or of all."""
        with self._state.locked() as world:
            world.recommendations = [
                r for r in world.recommendations if project_id not in (None, r.project_id)
            ]

    def set_last_authentication(self, email: str, at: datetime | None) -> None:
        """Record when a service account last authenticated (None: never, in the window)."""
        # Idle 90 days or never gives a google.iam.serviceAccount.Insight; no record gives none.
        with self._state.locked() as world:
            _account(world, email)
            world.last_authentication[email] = at

    def service_account(self, email: str) -> dict[str, Any]:
        """Return a service account's state as the IAM REST API would show it."""
        with self._state.locked() as world:
            account = _account(world, email)
            return {
                "name": account.name,
                "projectId": account.project_id,
                "uniqueId": account.unique_id,
                "email": account.email,
                "displayName": account.display_name,
                "description": account.description,
                "oauth2ClientId": account.unique_id,
                "disabled": account.disabled,
            }

    def iam_policy(self, project_id: str) -> dict[str, Any]:
        """Return a project's allow policy as stored (version 3 view, etag in base64)."""
        with self._state.locked() as world:
            key = f"projects/{_project(world, project_id).project_id}"
            return copy.deepcopy(world.policies.get(key) or {"version": 1, "bindings": []})

    def deny_policies(self, project_id: str) -> list[dict[str, Any]]:
        """Return the deny policies attached to a project, with their rules, by policy id."""
        with self._state.locked() as world:
            key = f"projects/{_project(world, project_id).project_id}"
            stored = world.deny_policies.get(key, {})
            return [copy.deepcopy(stored[policy_id]) for policy_id in sorted(stored)]


def _project(world: World, ref: str) -> Project:
    project = world.project(ref)
    if project is None:
        raise LookupError(f"no project {ref} in the emulator")
    return project


def _account(world: World, email: str) -> ServiceAccount:
    account = world.service_accounts.get(email)
    if account is None:
        raise LookupError(f"no service account {email} in the emulator")
    return account
