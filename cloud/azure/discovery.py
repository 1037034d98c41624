"""Find subscriptions and their service principals and managed identities (blocking calls).

Each principal is addressed per subscription as `IdentityRef(provider="azure", account=<the
subscription id>, native_id=<its Entra object id>, name=<display name or MI name>, kind=...)`.
The principals found are those of type ServicePrincipal holding a role assignment in the
subscription (at, above or below it) and the subscription's user-assigned managed identities,
assigned or not; Entra's whole directory (thousands of Microsoft apps) is not listed. Names
and tags come from the MI resource (ARM tags) or from Microsoft Graph (`displayName`, `tags`:
`k=v` strings, a plain word `w` becoming `w=true`; the app's client id is added as
`azure:app-id`, the id owners know an app by). A principal whose Entra object is gone (an
orphaned assignment) is skipped. Tag keys are lower-cased (`LEASH:Owner` is `leash:owner`):
ARM compares tag names case-insensitively, and a rule that read one spelling only could be
sidestepped by another; two spellings of one key with different values (possible in Graph)
are ambiguous and both dropped, so nobody chooses an owner by adding a differently cased tag.

Trust heuristic: a principal is trusted by an Azure AI service only when that is certain, i.e.
it is the *system-assigned* managed identity of an Azure OpenAI / AI Services account
(`cognitiveservices.azure.com`) or of an Azure Machine Learning / AI Foundry workspace
(`machinelearningservices.azure.com`): Graph gives such an identity `servicePrincipalType`
`ManagedIdentity` and the owning resource's id among its `alternativeNames`. User-assigned
identities and app registrations can be used by anything that holds them, so they get none.

`created_at`/`created_by` come from a managed identity's ARM `systemData`; `granted_by` stays
empty: an assignment's `createdBy` is a bare object id, often Leash's own (after a release).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cloud.azure import pim
from cloud.azure.assignments import SERVICE_PRINCIPAL, Assignment, list_assignments
from cloud.azure.clients import SUBSCRIPTIONS_API_VERSION, AzureClients
from cloud.azure.context import Context
from cloud.azure.errors import is_not_found
from cloud.base import CloudError, DiscoveredIdentity, IdentityKind, IdentityRef

PROVIDER = "azure"
GRAPH_SELECT = "id,appId,displayName,tags,servicePrincipalType,alternativeNames"
GRAPH_FAILURE = "graph"  # failures key: "<subscription>:graph"
PIM_FAILURE = "pim"
APP_ID_TAG = "azure:app-id"
TRUSTED_NAMESPACES = {
    "microsoft.cognitiveservices": "cognitiveservices.azure.com",
    "microsoft.machinelearningservices": "machinelearningservices.azure.com",
}
ENABLED_STATES = frozenset({"enabled", "pastdue", "warned"})


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscription to scan."""

    subscription_id: str
    name: str = ""
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ManagedIdentity:
    """A user-assigned managed identity as ARM lists it."""

    principal_id: str
    name: str
    resource_id: str
    tags: dict[str, str]
    created_at: datetime | None = None
    created_by: str | None = None


def describe(identity: IdentityRef) -> str:
    """Name a principal and its subscription for messages."""
    where = f"in subscription {identity.account}"
    return f"{identity.kind} {identity.name} ({identity.native_id}) {where}"


def tag_keys(pairs: Iterable[tuple[Any, Any]]) -> dict[str, str]:
    """Key tags by lower-cased name, dropping a name whose spellings disagree (see module doc)."""
    result: dict[str, str] = {}
    ambiguous: set[str] = set()
    for key, value in pairs:
        name, text = str(key).strip().lower(), str(value)
        if name in result and result[name] != text:
            ambiguous.add(name)
        result.setdefault(name, text)
    return {name: text for name, text in result.items() if name not in ambiguous}


def graph_tags(tags: Iterable[Any]) -> dict[str, str]:
    """Read Graph service principal tags: `k=v` pairs, a plain word meaning `word=true`."""
    pairs: list[tuple[str, str]] = []
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip():
            continue
        key, sep, value = tag.strip().partition("=")
        pairs.append((key, value.strip() if sep else "true"))
    return tag_keys(pairs)


def trusted_services(service_principal: dict[str, Any]) -> tuple[str, ...]:
    """Return the AI services a system-assigned managed identity belongs to (see module doc)."""
    if str(service_principal.get("servicePrincipalType") or "") != "ManagedIdentity":
        return ()
    found: list[str] = []
    for name in service_principal.get("alternativeNames") or []:
        parts = str(name).strip("/").split("/")
        lowered = [part.lower() for part in parts]
        if "providers" not in lowered or "microsoft.managedidentity" in lowered:
            continue
        namespace = lowered[lowered.index("providers") + 1 :][:1]
        service = TRUSTED_NAMESPACES.get(namespace[0]) if namespace else None
        if service is not None:
            found.append(service)
    return tuple(dict.fromkeys(found))


class Directory:
    """Microsoft Graph service principals by object id, read once each (None: not in Entra)."""

    def __init__(self, clients: AzureClients) -> None:
        self._clients = clients
        self._lock = threading.Lock()
        self._known: dict[str, dict[str, Any] | None] = {}

    def service_principal(self, object_id: str) -> dict[str, Any] | None:
        """Return the service principal's displayName, appId, tags, ...; None when gone."""
        with self._lock:
            if object_id in self._known:
                return self._known[object_id]
        try:
            found: dict[str, Any] | None = self._clients.call(
                "graph servicePrincipals.get",
                f"service principal {object_id}",
                lambda: self._clients.graph_service_principal(object_id, GRAPH_SELECT),
            )
        except CloudError as error:
            if not is_not_found(error):
                raise
            found = None
        with self._lock:
            self._known[object_id] = found
        return found


def _subscription(body: Any) -> Subscription:
    tags = body.get("tags") or {}
    return Subscription(
        subscription_id=str(body.get("subscriptionId") or body.get("id", "")).rsplit("/", 1)[-1],
        name=str(body.get("displayName") or ""),
        tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {},
    )


def _enabled(body: Any) -> bool:
    return str(body.get("state") or "Enabled").lower() in ENABLED_STATES


def list_subscriptions(
    clients: AzureClients, *, wanted: Sequence[str], failures: dict[str, str]
) -> list[Subscription]:
    """Return the configured subscriptions, else every enabled one the credential sees."""
    if not wanted:
        listed = clients.call(
            "subscriptions.list",
            "Leash's credential",
            lambda: clients.arm_pages("/subscriptions", api_version=SUBSCRIPTIONS_API_VERSION),
        )
        return [_subscription(body) for body in listed if _enabled(body)]
    found: list[Subscription] = []
    for subscription_id in wanted:
        try:
            body = clients.call(
                "subscriptions.get",
                f"subscription {subscription_id}",
                lambda s=subscription_id: clients.arm_get(  # type: ignore[misc]
                    f"/subscriptions/{s}", api_version=SUBSCRIPTIONS_API_VERSION
                ),
            )
        except CloudError as error:
            failures[subscription_id] = str(error)
            continue
        if not _enabled(body):
            failures[subscription_id] = f"subscription {subscription_id} is {body.get('state')}"
            continue
        found.append(_subscription(body))
    return found


def managed_identities(clients: AzureClients, subscription_id: str) -> list[ManagedIdentity]:
    """List the subscription's user-assigned managed identities."""
    client = clients.msi(subscription_id)
    listed = clients.call(
        "userAssignedIdentities.listBySubscription",
        f"subscription {subscription_id}",
        lambda: list(client.user_assigned_identities.list_by_subscription()),
    )
    found: list[ManagedIdentity] = []
    for message in listed:
        system = getattr(message, "system_data", None)
        found.append(
            ManagedIdentity(
                principal_id=str(message.principal_id),
                name=str(message.name),
                resource_id=str(message.id),
                tags=tag_keys((message.tags or {}).items()),
                created_at=getattr(system, "created_at", None),
                created_by=getattr(system, "created_by", None),
            )
        )
    return found


def scan_subscription(
    ctx: Context, directory: Directory, subscription: Subscription, *, failures: dict[str, str]
) -> list[DiscoveredIdentity]:
    """List a subscription's service principals and managed identities with their roles."""
    sid = subscription.subscription_id
    assignments = [
        a
        for a in list_assignments(ctx.clients, sid)
        if a.principal_type.lower() == SERVICE_PRINCIPAL.lower()
    ]
    identities = {mi.principal_id.lower(): mi for mi in managed_identities(ctx.clients, sid)}
    try:
        grants = ctx.live_pim_grants(sid, None)
    except CloudError as error:
        failures[f"{sid}:{PIM_FAILURE}"] = str(error)
        grants = []
    principals = dict.fromkeys([a.principal_id.lower() for a in assignments] + list(identities))
    found: list[DiscoveredIdentity] = []
    for principal in principals:
        mine = [a for a in assignments if a.principal_id.lower() == principal]
        pim_mine = [g for g in grants if g.principal_id.lower() == principal]
        found_one = _identity(
            ctx, directory, sid, principal, identities.get(principal), mine, pim_mine, failures
        )
        if found_one is not None:
            found.append(found_one)
    return found


def _identity(
    ctx: Context,
    directory: Directory,
    sid: str,
    principal: str,
    identity: ManagedIdentity | None,
    assignments: list[Assignment],
    grants: list[pim.PimGrant],
    failures: dict[str, str],
) -> DiscoveredIdentity | None:
    service_principal: dict[str, Any] | None = {}
    if identity is None:
        try:
            service_principal = directory.service_principal(principal)
        except CloudError as error:
            failures[f"{sid}:{GRAPH_FAILURE}"] = str(error)
        if service_principal is None:
            return None  # an assignment to a principal deleted from Entra
    sp = service_principal or {}
    object_id = identity.principal_id if identity else str(sp.get("id") or principal)
    managed = identity is not None or sp.get("servicePrincipalType") == "ManagedIdentity"
    tags = dict(identity.tags) if identity else graph_tags(sp.get("tags") or [])
    if sp.get("appId"):
        tags.setdefault(APP_ID_TAG, str(sp["appId"]))
    pim_keys = {grant.key() for grant in grants}
    own = [a for a in assignments if a.grant_id is None and a.key() not in pim_keys]
    inline = {f"leash-grant-{a.grant_id}" for a in assignments if a.grant_id is not None}
    inline |= {f"leash-grant-{grant.grant_id}" for grant in grants}
    return DiscoveredIdentity(
        ref=IdentityRef(
            provider=PROVIDER,
            account=sid,
            native_id=object_id,
            name=identity.name if identity else str(sp.get("displayName") or object_id),
            kind=IdentityKind.MANAGED_IDENTITY if managed else IdentityKind.SERVICE_PRINCIPAL,
        ),
        tags=tags,
        trust_principals=trusted_services(sp),
        created_at=identity.created_at if identity else None,
        created_by=identity.created_by if identity else None,
        attached_policies=tuple(sorted({ctx.spelled(a, sid) for a in own})),
        inline_policies=tuple(sorted(inline)),
    )
