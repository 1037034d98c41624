"""The Azure emulator's seeded world as the Azure provider tests see it, and how to read it back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.mgmt.authorization.models import Permission, RoleDefinition

from cloud.azure import AzureProvider
from cloud.base import GrantSpec, IdentityKind, IdentityRef
from cloud.sandbox.azure import AzureEmulator
from cloud.sandbox.azure.state import new_guid
from tests.cloud.azure_fixtures import AzureClients

AGENTS = "3f1c2a5e-8b4d-4c7a-9e2f-1a6b5c4d3e21"  # leash-demo-agents: PIM on
DATA = "8d2e4f6a-1b3c-4d5e-8f7a-9b0c1d2e3f42"  # leash-demo-data: no PIM licence
TRIAGE = "support-triage-az-agent"
FORECAST = "forecast-az-agent"
ETL = "etl-runner-sp"
SUMMARIZER = "openai-summarizer-mi"
PRINCIPALS = {
    TRIAGE: "a1f3c2d4-5b6e-4f70-8a91-b2c3d4e5f601",
    FORECAST: "b2e4d3c5-6c7f-4081-9ba2-c3d4e5f60712",
    ETL: "c3f5e4d6-7d80-4192-acb3-d4e5f6071823",
    SUMMARIZER: "d4a6f5e7-8e91-42a3-bdc4-e5f607182934",
}
SUPPORT_GROUP = f"/subscriptions/{AGENTS}/resourceGroups/rg-support-bots"


@dataclass
class World:
    """The freshly reset emulator, providers on it, and readers of what it holds."""

    emulator: AzureEmulator

    def provider(self, **options: Any) -> AzureProvider:
        """Return an AzureProvider on the emulator, without retries unless told otherwise."""
        settings: dict[str, Any] = {"max_attempts": 1, "backoff": 0.01, **options}
        return AzureProvider(
            credential=self.emulator.credential(),
            base_url=self.emulator.endpoint,
            graph_url=self.emulator.endpoint,
            connection_verify=self.emulator.cert_path,
            **settings,
        )

    def ref(self, name: str, subscription: str = AGENTS) -> IdentityRef:
        """Address a seeded principal in a subscription the way discovery does."""
        kind = (
            IdentityKind.MANAGED_IDENTITY if name == SUMMARIZER else IdentityKind.SERVICE_PRINCIPAL
        )
        return IdentityRef("azure", subscription, PRINCIPALS[name], name, kind)

    def add(self, name: str, *, subscription: str = AGENTS, **extra: Any) -> IdentityRef:
        """Create a service principal in the directory and address it in a subscription."""
        object_id = self.emulator.add_service_principal(name, **extra)
        return IdentityRef("azure", subscription, object_id, name, IdentityKind.SERVICE_PRINCIPAL)

    def assign(self, identity: IdentityRef, role: str, scope: str | None = None) -> str:
        """Assign a role to the identity as another admin would (at its subscription by default)."""
        where = scope or f"/subscriptions/{identity.account}"
        return self.emulator.add_role_assignment(
            where, role, identity.native_id, "ServicePrincipal"
        )

    def assignments(self, identity: IdentityRef) -> list[dict[str, Any]]:
        """Return the assignments in force now for the identity in its subscription."""
        return [
            a
            for a in self.emulator.role_assignments(f"/subscriptions/{identity.account}")
            if a["principalId"].lower() == identity.native_id.lower()
        ]

    def held(self, identity: IdentityRef) -> set[tuple[str, str]]:
        """Return the (role name, scope) pairs in force for the identity."""
        return {(a["roleName"], a["scope"]) for a in self.assignments(identity)}

    def exact(self, identity: IdentityRef) -> list[tuple[str, str, str, str]]:
        """Return the identity's assignments as (name, role definition, scope, principal)."""
        return sorted(
            (a["name"], a["roleDefinitionId"].lower(), a["scope"].lower(), a["principalId"])
            for a in self.assignments(identity)
        )

    def writes(self) -> list[tuple[str, str]]:
        """Return the (method, path) of every write the emulator received."""
        return [(c.method, c.path) for c in self.emulator.requests if c.method != "GET"]


def define_role(
    emulator: AzureEmulator,
    name: str,
    *,
    actions: tuple[str, ...] = (),
    not_actions: tuple[str, ...] = (),
    data_actions: tuple[str, ...] = (),
    not_data_actions: tuple[str, ...] = (),
    subscription: str = AGENTS,
) -> str:
    """Create a custom role assignable in a subscription, as an admin would; return its id.

    It goes through the real SDK's `role_definitions.create_or_update` (a PUT the emulator
    answers as ARM does), not into the emulator's state directly.
    """
    scope = f"/subscriptions/{subscription}"
    clients = AzureClients.connect(emulator)
    try:
        created = clients.authorization(subscription).role_definitions.create_or_update(
            scope,
            new_guid(),
            RoleDefinition(
                role_name=name,
                description=f"{name} (test custom role)",
                role_type="CustomRole",
                permissions=[
                    Permission(
                        actions=list(actions),
                        not_actions=list(not_actions),
                        data_actions=list(data_actions),
                        not_data_actions=list(not_data_actions),
                    )
                ],
                assignable_scopes=[scope],
            ),
        )
    finally:
        clients.close()
    return str(created.id)


def spec(
    grant_id: str,
    *roles: str,
    minutes: float = 60,
    resources: tuple[str, ...] = (),
    now: datetime | None = None,
) -> GrantSpec:
    """Build a grant of `roles` for `minutes` from `now` (real time by default)."""
    expires_at = (now or datetime.now(UTC)) + timedelta(minutes=minutes)
    return GrantSpec(
        grant_id=grant_id,
        actions=roles,
        resources=resources,
        expires_at=expires_at.replace(microsecond=0),
    )
