"""IAM admin v1 (service accounts, keys, roles) over gRPC, the only transport its client has."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.cloud.iam_admin_v1 import types

from cloud.sandbox.gcp import custom_roles
from cloud.sandbox.gcp.permissions import grpc_permission
from cloud.sandbox.gcp.roles import PREDEFINED_ROLES
from cloud.sandbox.gcp.state import (
    ApiCall,
    ApiError,
    CustomRole,
    GcpState,
    ServiceAccount,
    ServiceAccountKey,
    Status,
    World,
    page,
)
from cloud.sandbox.operation_log import CloudOperation

SERVICE = "iam"
GRPC_SERVICE = "google.iam.admin.v1.IAM"
LOOPBACK = "127.0.0.1"
KeyType = types.ListServiceAccountKeysRequest.KeyType


def account_message(account: ServiceAccount) -> types.ServiceAccount:
    """Return a service account as the IAM API shows it."""
    return types.ServiceAccount(
        name=account.name,
        project_id=account.project_id,
        unique_id=account.unique_id,
        email=account.email,
        display_name=account.display_name,
        description=account.description,
        oauth2_client_id=account.unique_id,
        disabled=account.disabled,
    )


def _key_message(account: ServiceAccount, key: ServiceAccountKey) -> types.ServiceAccountKey:
    return types.ServiceAccountKey(
        name=f"{account.name}/keys/{key.key_id}",
        key_algorithm=types.ServiceAccountKeyAlgorithm.KEY_ALG_RSA_2048,
        valid_after_time=key.valid_after,
        valid_before_time=key.valid_before,
        key_origin=types.ServiceAccountKeyOrigin.GOOGLE_PROVIDED,
        key_type=KeyType.USER_MANAGED if key.user_managed else KeyType.SYSTEM_MANAGED,
        disabled=key.disabled,
    )


class IamAdminService:
    """The IAM admin methods Leash uses, over the shared state."""

    def __init__(self, state: GcpState) -> None:
        self._state = state

    def _account(self, world: World, name: str) -> ServiceAccount:
        project_ref, _, ref = name.removeprefix("projects/").partition("/serviceAccounts/")
        account = world.service_account(ref)
        if account is not None and project_ref != "-":
            project = world.project(project_ref)
            if project is None or project.project_id != account.project_id:
                account = None
        if account is None:
            raise ApiError(Status.NOT_FOUND, f"Unknown service account: {name}")
        return account

    def list_service_accounts(
        self, request: types.ListServiceAccountsRequest
    ) -> types.ListServiceAccountsResponse:
        """List a project's user-managed service accounts, a page at a time."""
        self._state.record(ApiCall(SERVICE, "projects.serviceAccounts.list", request.name))
        with self._state.locked() as world:
            project = world.project(request.name.removeprefix("projects/"))
            if project is None or not request.name.startswith("projects/"):
                raise ApiError(Status.NOT_FOUND, f"Project not found: {request.name}")
            accounts = sorted(
                (a for a in world.service_accounts.values() if a.project_id == project.project_id),
                key=lambda a: a.email,
            )
            messages = [account_message(a) for a in accounts]
        chunk, following = page(
            messages,
            size=request.page_size,
            token=request.page_token,
            default=20,
            maximum=100,
        )
        return types.ListServiceAccountsResponse(accounts=chunk, next_page_token=following)

    def get_service_account(self, request: types.GetServiceAccountRequest) -> types.ServiceAccount:
        """Return one service account by email or unique id."""
        self._state.record(ApiCall(SERVICE, "projects.serviceAccounts.get", request.name))
        with self._state.locked() as world:
            return account_message(self._account(world, request.name))

    def disable_service_account(self, request: types.DisableServiceAccountRequest) -> None:
        """Disable a service account (idempotent)."""
        self._state.record(ApiCall(SERVICE, "projects.serviceAccounts.disable", request.name))
        with self._state.locked() as world:
            self._account(world, request.name).disabled = True

    def enable_service_account(self, request: types.EnableServiceAccountRequest) -> None:
        """Enable a service account (idempotent)."""
        self._state.record(ApiCall(SERVICE, "projects.serviceAccounts.enable", request.name))
        with self._state.locked() as world:
            self._account(world, request.name).disabled = False

    def get_role(self, request: types.GetRoleRequest) -> types.Role:
        """Return a predefined or custom role with the permissions it includes."""
        self._state.record(ApiCall(SERVICE, "roles.get", request.name))
        permissions = PREDEFINED_ROLES.get(request.name)
        if permissions is not None:
            return types.Role(
                name=request.name,
                title=request.name.removeprefix("roles/"),
                included_permissions=list(permissions),
                stage=types.Role.RoleLaunchStage.GA,
            )
        with self._state.locked() as world:
            role = custom_roles.find(world, request.name)
            if role is None:
                raise ApiError(Status.NOT_FOUND, f"The role named {request.name} was not found.")
            return _role_message(role)

    def create_role(self, request: types.CreateRoleRequest) -> types.Role:
        """Create a project's or the organization's custom role."""
        kind = request.parent.partition("/")[0]
        self._state.record(ApiCall(SERVICE, f"{kind}.roles.create", request.parent))
        with self._state.locked() as world:
            role = custom_roles.create(
                self._state,
                world,
                parent=request.parent,
                role_id=request.role_id,
                permissions=request.role.included_permissions,
                title=request.role.title,
                description=request.role.description,
            )
            return _role_message(role)

    def list_service_account_keys(
        self, request: types.ListServiceAccountKeysRequest
    ) -> types.ListServiceAccountKeysResponse:
        """List a service account's keys, optionally of some types only."""
        self._state.record(ApiCall(SERVICE, "projects.serviceAccounts.keys.list", request.name))
        wanted = list(request.key_types)
        if KeyType.KEY_TYPE_UNSPECIFIED in wanted or len(set(wanted)) != len(wanted):
            raise ApiError(Status.INVALID_ARGUMENT, "Invalid or duplicate key_types.")
        with self._state.locked() as world:
            account = self._account(world, request.name)
            keys = [_key_message(account, key) for key in world.keys.get(account.email, [])]
        if wanted:
            keys = [key for key in keys if key.key_type in wanted]
        return types.ListServiceAccountKeysResponse(keys=keys)


def _role_message(role: CustomRole) -> types.Role:
    return types.Role(
        name=role.name,
        title=role.title,
        description=role.description,
        included_permissions=list(role.permissions),
        stage=types.Role.RoleLaunchStage.GA,
        etag=role.etag.encode(),
        deleted=role.deleted,
    )


def _empty(_: object) -> bytes:
    return b""  # google.protobuf.Empty has no fields


def _user_agent(context: Any) -> str:
    """Return the call's user-agent and x-goog-api-client metadata (the client info)."""
    metadata = dict(context.invocation_metadata() or ())
    sent = (metadata.get("user-agent", ""), metadata.get("x-goog-api-client", ""))
    return " ".join(str(value) for value in sent if value)


def _unary(
    state: GcpState,
    method: str,
    behaviour: Callable[[Any], Any],
    request_type: Any,
    serializer: Callable[[Any], bytes],
) -> Any:
    permission = grpc_permission(f"{GRPC_SERVICE}/{method}")

    def handle(request: Any, context: Any) -> Any:
        operation = CloudOperation("gcp", SERVICE, method, permission, _user_agent(context))
        state.record_operation(operation)
        try:
            return behaviour(request)
        except ApiError as error:
            context.abort(getattr(grpc.StatusCode, error.status.name), error.message)
            raise  # context.abort raises; this keeps the control flow plain

    return grpc.unary_unary_rpc_method_handler(
        handle, request_deserializer=request_type.deserialize, response_serializer=serializer
    )


def _handler(state: GcpState) -> Any:
    service = IamAdminService(state)
    methods: dict[str, tuple[Callable[[Any], Any], Any, Callable[[Any], bytes]]] = {
        "ListServiceAccounts": (
            service.list_service_accounts,
            types.ListServiceAccountsRequest,
            types.ListServiceAccountsResponse.serialize,
        ),
        "GetServiceAccount": (
            service.get_service_account,
            types.GetServiceAccountRequest,
            types.ServiceAccount.serialize,
        ),
        "DisableServiceAccount": (
            service.disable_service_account,
            types.DisableServiceAccountRequest,
            _empty,
        ),
        "EnableServiceAccount": (
            service.enable_service_account,
            types.EnableServiceAccountRequest,
            _empty,
        ),
        "GetRole": (service.get_role, types.GetRoleRequest, types.Role.serialize),
        "CreateRole": (service.create_role, types.CreateRoleRequest, types.Role.serialize),
        "ListServiceAccountKeys": (
            service.list_service_account_keys,
            types.ListServiceAccountKeysRequest,
            types.ListServiceAccountKeysResponse.serialize,
        ),
    }
    return grpc.method_handlers_generic_handler(
        GRPC_SERVICE,
        {name: _unary(state, name, *parts) for name, parts in methods.items()},
    )


class GrpcServer:
    """A gRPC server on a free loopback port serving IAM admin v1."""

    def __init__(self, server: Any, port: int) -> None:
        self._server = server
        self.port = port

    @classmethod
    def start(cls, *, state: GcpState) -> GrpcServer:
        """Start serving on a free loopback port."""
        server = grpc.server(ThreadPoolExecutor(max_workers=8, thread_name_prefix="gcp-grpc"))
        server.add_generic_rpc_handlers((_handler(state),))
        port = server.add_insecure_port(f"{LOOPBACK}:0")
        server.start()
        return cls(server, int(port))

    @property
    def target(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def stop(self) -> None:
        """Stop at once and wait for the server to finish."""
        self._server.stop(grace=None).wait()
