"""Real Azure SDK clients pointed at an AzureEmulator, built the way a provider would build them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from azure.core import PipelineClient
from azure.core.pipeline.policies import BearerTokenCredentialPolicy
from azure.core.rest import HttpRequest
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.core import ARMPipelineClient
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy
from azure.mgmt.monitor import MonitorManagementClient
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.resource.resources import ResourceManagementClient

from cloud.sandbox.azure import AzureEmulator, EmulatorCredential

ARM_SCOPE = "https://management.azure.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
Client = TypeVar("Client")


def arm_kwargs(emulator: AzureEmulator) -> dict[str, Any]:
    """Return the keyword arguments every azure-mgmt client needs to reach the emulator."""
    # retry_total=0: the emulator's errors are deterministic, so a retry only slows a test.
    return {
        "base_url": emulator.endpoint,
        "connection_verify": emulator.cert_path,
        "retry_total": 0,
    }


@dataclass(slots=True)
class AzureClients:
    """The SDK clients of one emulator, one per subscription where the API is per subscription."""

    emulator: AzureEmulator
    credential: EmulatorCredential
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict)

    @classmethod
    def connect(cls, emulator: AzureEmulator) -> AzureClients:
        """Build clients lazily on the emulator's endpoint with its credential."""
        return cls(emulator, emulator.credential())

    def authorization(self, subscription_id: str) -> AuthorizationManagementClient:
        """Return AuthorizationManagementClient (RBAC 2022-04-01, PIM 2020-10-01)."""
        return self._client("authorization", subscription_id, AuthorizationManagementClient)

    def msi(self, subscription_id: str) -> ManagedServiceIdentityClient:
        """Return ManagedServiceIdentityClient (2024-11-30)."""
        return self._client("msi", subscription_id, ManagedServiceIdentityClient)

    def monitor(self, subscription_id: str) -> MonitorManagementClient:
        """Return MonitorManagementClient (activity log 2015-04-01)."""
        return self._client("monitor", subscription_id, MonitorManagementClient)

    def resources(self, subscription_id: str) -> ResourceManagementClient:
        """Return ResourceManagementClient (resource groups)."""
        return self._client("resources", subscription_id, ResourceManagementClient)

    def arm(self) -> ARMPipelineClient[HttpRequest, Any]:
        """Return a bare ARM pipeline (bearer token over https), as every mgmt client has."""
        return ARMPipelineClient(
            base_url=self.emulator.endpoint,
            policies=[ARMChallengeAuthenticationPolicy(self.credential, ARM_SCOPE)],
            connection_verify=self.emulator.cert_path,
        )

    def graph(self) -> PipelineClient[HttpRequest, Any]:
        """Return a Microsoft Graph pipeline with a token for Graph's scope."""
        return PipelineClient(
            base_url=self.emulator.endpoint,
            policies=[BearerTokenCredentialPolicy(self.credential, GRAPH_SCOPE)],
            connection_verify=self.emulator.cert_path,
        )

    def close(self) -> None:
        """Close every client built."""
        for client in self._cache.values():
            client.close()
        self._cache.clear()

    def _client(self, kind: str, subscription_id: str, factory: Callable[..., Client]) -> Client:
        key = (kind, subscription_id)
        if key not in self._cache:
            self._cache[key] = factory(
                self.credential, subscription_id, **arm_kwargs(self.emulator)
            )
        client: Client = self._cache[key]
        return client


def send(client: PipelineClient[HttpRequest, Any], method: str, url: str, **kwargs: Any) -> Any:
    """Send one request (path relative to the emulator) through a pipeline; return the response."""
    return client.send_request(HttpRequest(method, client.format_url(url), **kwargs))
