"""The GCP emulator's seeded world as the GCP provider tests see it, and how to read it back."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cloud.base import GrantSpec, IdentityKind, IdentityRef
from cloud.gcp import GcpProvider
from cloud.gcp.clients import GcpClients
from cloud.sandbox.gcp import GcpEmulator

SA_DOMAIN = "iam.gserviceaccount.com"
TRIAGE = "support-triage-gcp-agent"
FORECAST = "forecast-gcp-agent"
ETL = "etl-runner"
RETIRED = "old-chatbot-agent"


@dataclass
class World:
    """The freshly reset emulator, providers on it, and readers of what it holds."""

    emulator: GcpEmulator

    def provider(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        role_permissions: Mapping[str, Sequence[str]] | None = None,
        **scope: Any,
    ) -> GcpProvider:
        """Return a GcpProvider on the emulator (the organization unless `scope` says else)."""
        if not scope:
            scope = {"organization": self.emulator.organization}
        return GcpProvider(
            rest_endpoint=self.emulator.rest_endpoint,
            grpc_target=self.emulator.grpc_target,
            backoff=0.01,
            clock=clock,
            role_permissions=role_permissions,
            **scope,
        )

    def clients(self) -> GcpClients:
        """Return google-cloud clients on the emulator, for what the tests do by hand."""
        return GcpClients(
            credentials=None,
            rest_endpoint=self.emulator.rest_endpoint,
            grpc_target=self.emulator.grpc_target,
            max_attempts=1,
            conflict_attempts=3,
            backoff=0.01,
        )

    def email(self, account_id: str) -> str:
        """Return the e-mail of a seeded service account, whichever project holds it."""
        for project in self.emulator.project_ids:
            email = f"{account_id}@{project}.{SA_DOMAIN}"
            try:
                self.emulator.service_account(email)
            except LookupError:
                continue
            return email
        raise LookupError(f"no seeded service account {account_id}")

    def ref(self, account_id: str) -> IdentityRef:
        """Address a seeded service account the way discovery does."""
        email = self.email(account_id)
        project = email.partition("@")[2].removesuffix(f".{SA_DOMAIN}")
        return IdentityRef("gcp", project, email, account_id, IdentityKind.SERVICE_ACCOUNT)

    def add(self, project: str, account_id: str, **extra: Any) -> IdentityRef:
        """Create a service account and address it."""
        email = self.emulator.add_service_account(project, account_id, **extra)
        return IdentityRef("gcp", project, email, account_id, IdentityKind.SERVICE_ACCOUNT)

    def bindings(self, identity: IdentityRef) -> list[dict[str, Any]]:
        """Return the bindings of the identity's project that name it (one member each shown)."""
        member = f"serviceAccount:{identity.native_id}"
        return [
            {**binding, "members": [member]}
            for binding in self.emulator.iam_policy(identity.account).get("bindings", [])
            if member in binding["members"]
        ]

    def titled(self, identity: IdentityRef, title: str) -> list[dict[str, Any]]:
        """Return the identity's bindings whose condition has `title`."""
        return [b for b in self.bindings(identity) if b.get("condition", {}).get("title") == title]

    def deny_policy(self, project: str, policy_id: str) -> dict[str, Any] | None:
        """Return one deny policy of a project by id, or None."""
        for policy in self.emulator.deny_policies(project):
            if policy["name"].rsplit("/", 1)[-1] == policy_id:
                return policy
        return None

    def roles(self, identity: IdentityRef, at: datetime | None = None) -> set[str]:
        """Return the roles IAM would honour for the identity at `at`."""
        member = f"serviceAccount:{identity.native_id}"
        return self.emulator.effective_roles(member, identity.account, at=at)


def spec(
    grant_id: str,
    *roles: str,
    hours: float = 1,
    deny: tuple[str, ...] = (),
    resources: tuple[str, ...] = (),
    now: datetime | None = None,
) -> GrantSpec:
    """Build a grant of `roles` for `hours` from `now` (real time by default)."""
    expires_at = (now or datetime.now(UTC)) + timedelta(hours=hours)
    return GrantSpec(
        grant_id=grant_id,
        actions=roles,
        resources=resources,
        expires_at=expires_at.replace(microsecond=0),
        deny_actions=deny,
    )
