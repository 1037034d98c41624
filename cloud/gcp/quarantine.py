"""Quarantine a service account by disabling it; release by enabling it again.

A disabled account can no longer authenticate and the access tokens it already holds stop
working, so sessions issued before the quarantine end with it; its roles, keys and the
account itself are kept, so `release` gives back exactly what was there. Google-managed
service agents cannot be disabled by a customer and are refused.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.cloud import iam_admin_v1

from cloud.base import CloudConflictError, CloudError, IdentityRef, Snapshot
from cloud.gcp.clients import GcpClients
from cloud.gcp.discovery import agent_service, describe

SNAPSHOT_KIND = "gcp-quarantine"
MECHANISM = "gcp-disable-service-account"
QUARANTINE_PERMISSIONS = (
    "iam.serviceAccounts.get",
    "iam.serviceAccounts.disable",
    "iam.serviceAccounts.enable",
)


def account_name(identity: IdentityRef) -> str:
    """Return the IAM resource name of the identity's service account."""
    return f"projects/{identity.account}/serviceAccounts/{identity.native_id}"


def _account(clients: GcpClients, identity: IdentityRef) -> iam_admin_v1.ServiceAccount:
    name = account_name(identity)
    return clients.call(
        "serviceAccounts.get",
        describe(identity),
        lambda: clients.iam().get_service_account(request={"name": name}),
    )


def _refuse_service_agent(identity: IdentityRef) -> None:
    if agent_service(identity.native_id) is not None:
        raise CloudError(
            f"{describe(identity)} is a Google-managed service agent, which cannot be disabled; "
            "restrict its roles instead",
            code="ServiceAgent",
        )


def quarantine(
    clients: GcpClients, identity: IdentityRef, *, at: datetime, reason: str
) -> Snapshot:
    """Disable the service account; return what `release` needs."""
    if at.tzinfo is None:
        raise CloudError(f"quarantine of {describe(identity)}: `at` must be timezone-aware")
    _refuse_service_agent(identity)
    if _account(clients, identity).disabled:
        raise CloudConflictError(
            f"{describe(identity)} is already disabled", code="AlreadyQuarantined"
        )
    name = account_name(identity)
    clients.call(
        "serviceAccounts.disable",
        describe(identity),
        lambda: clients.iam().disable_service_account(request={"name": name}),
    )
    return {
        "kind": SNAPSHOT_KIND,
        "mechanism": MECHANISM,
        "service_account": name,
        "was_enabled": True,
        "quarantined_at": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reason": reason,
    }


def release(clients: GcpClients, identity: IdentityRef, snapshot: Snapshot) -> bool:
    """Enable the account again; False when it is not disabled (nothing changed)."""
    valid = (
        snapshot.get("kind") == SNAPSHOT_KIND
        and snapshot.get("mechanism") == MECHANISM
        and snapshot.get("service_account") == account_name(identity)
    )
    if not valid:
        raise CloudError(
            f"not a GCP quarantine snapshot of {describe(identity)}: {dict(snapshot)!r}",
            code="BadSnapshot",
        )
    if snapshot.get("was_enabled") is not True or not _account(clients, identity).disabled:
        return False  # Leash did not disable it, or someone enabled it already
    name = account_name(identity)
    clients.call(
        "serviceAccounts.enable",
        describe(identity),
        lambda: clients.iam().enable_service_account(request={"name": name}),
    )
    return True
