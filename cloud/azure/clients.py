"""Build Azure clients lazily, and call them with errors translated and throttling retried.

Against Azure the credential is `DefaultAzureCredential` (built at first use) and the clients
talk to management.azure.com and graph.microsoft.com. Against the sandbox emulator
`base_url`/`graph_url` point them at its https endpoint and `connection_verify` at its
certificate. The SDKs' own retries are switched off: `call` retries throttling (honouring
Retry-After) and unavailability itself with tenacity, so the wait is bounded and visible.
Subscriptions are read over plain ARM REST (`GET /subscriptions`): azure-mgmt-resource 26 moved
`SubscriptionClient` into a package of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from azure.core import PipelineClient
from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.policies import (
    BearerTokenCredentialPolicy,
    ContentDecodePolicy,
    HeadersPolicy,
    NetworkTraceLoggingPolicy,
    RedirectPolicy,
    RequestIdPolicy,
    RetryPolicy,
    UserAgentPolicy,
)
from azure.core.rest import HttpRequest
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.monitor import MonitorManagementClient
from azure.mgmt.msi import ManagedServiceIdentityClient
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from cloud.azure.errors import retry_after, translate
from cloud.base import CloudError
from cloud.user_agent import leash_user_agent

ARM_URL = "https://management.azure.com"
GRAPH_URL = "https://graph.microsoft.com"
ARM_SCOPE = "https://management.azure.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
SUBSCRIPTIONS_API_VERSION = "2022-12-01"
_T = TypeVar("_T")


def _retryable(error: BaseException) -> bool:
    return isinstance(error, CloudError) and error.retryable


class AzureClients:
    """Hand out one client per API and subscription, built on first use; run calls via `call`."""

    def __init__(
        self,
        *,
        credential: TokenCredential | None,
        base_url: str | None,
        graph_url: str | None,
        connection_verify: str | bool,
        max_attempts: int,
        backoff: float,
    ) -> None:
        self._given = credential
        self._base_url = (base_url or ARM_URL).rstrip("/")
        self._graph_url = (graph_url or GRAPH_URL).rstrip("/")
        self._verify = connection_verify
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._lock = threading.RLock()
        self._credential: TokenCredential | None = None
        self._clients: dict[tuple[str, str], Any] = {}

    def credential(self) -> TokenCredential:
        """Return the credential, building `DefaultAzureCredential` on first use."""
        with self._lock:
            if self._credential is None:
                if self._given is not None:
                    self._credential = self._given
                else:
                    from azure.identity import DefaultAzureCredential  # only when needed

                    self._credential = DefaultAzureCredential()
            return self._credential

    def _sdk_options(self) -> dict[str, Any]:
        return {
            "base_url": self._base_url,
            "connection_verify": self._verify,
            "retry_total": 0,
            "user_agent": leash_user_agent(),  # prefixed to the SDK's own
        }

    def _client(self, kind: str, subscription_id: str, build: Callable[[], _T]) -> _T:
        with self._lock:
            key = (kind, subscription_id)
            if key not in self._clients:
                self._clients[key] = build()
            client: _T = self._clients[key]
            return client

    def authorization(self, subscription_id: str) -> Any:
        """Return the Microsoft.Authorization client of a subscription (multi-API, untyped)."""
        return self._client(
            "authorization",
            subscription_id,
            lambda: AuthorizationManagementClient(
                self.credential(), subscription_id, **self._sdk_options()
            ),
        )

    def msi(self, subscription_id: str) -> Any:
        """Return the managed identities client of a subscription."""
        return self._client(
            "msi",
            subscription_id,
            lambda: ManagedServiceIdentityClient(
                self.credential(), subscription_id, **self._sdk_options()
            ),
        )

    def monitor(self, subscription_id: str) -> MonitorManagementClient:
        """Return the Azure Monitor (activity log) client of a subscription."""
        return self._client(
            "monitor",
            subscription_id,
            lambda: MonitorManagementClient(
                self.credential(), subscription_id, **self._sdk_options()
            ),
        )

    def _pipeline(self, kind: str, base_url: str, scope: str) -> PipelineClient[Any, Any]:
        def build() -> PipelineClient[Any, Any]:
            policies = [
                RequestIdPolicy(),
                HeadersPolicy({"Accept": "application/json"}),
                UserAgentPolicy(user_agent=leash_user_agent()),
                ContentDecodePolicy(),
                RedirectPolicy(),
                RetryPolicy(retry_total=0),
                BearerTokenCredentialPolicy(self.credential(), scope),
                NetworkTraceLoggingPolicy(),
            ]
            return PipelineClient(base_url, policies=policies, connection_verify=self._verify)

        return self._client(kind, "", build)

    def _get_json(
        self, kind: str, base_url: str, scope: str, path: str, params: dict[str, str]
    ) -> Any:
        client = self._pipeline(kind, base_url, scope)
        request = HttpRequest("GET", f"{base_url}{path}", params=params)
        response = client.send_request(request)
        if response.status_code >= 400:
            raise HttpResponseError(response=response)
        return response.json()

    def arm_get(self, path: str, *, api_version: str) -> Any:
        """GET an ARM path (e.g. `/subscriptions`) and return its JSON body (one page)."""
        return self._get_json("arm", self._base_url, ARM_SCOPE, path, {"api-version": api_version})

    def arm_pages(self, path: str, *, api_version: str) -> list[dict[str, Any]]:
        """GET an ARM list and follow its `nextLink`s; return every item."""
        items: list[dict[str, Any]] = []
        body = self.arm_get(path, api_version=api_version)
        while True:
            items += [item for item in body.get("value") or [] if isinstance(item, dict)]
            link = body.get("nextLink")
            if not isinstance(link, str) or not link:
                return items
            client = self._pipeline("arm", self._base_url, ARM_SCOPE)
            response = client.send_request(HttpRequest("GET", link))
            if response.status_code >= 400:
                raise HttpResponseError(response=response)
            body = response.json()

    def graph_service_principal(self, object_id: str, select: str) -> dict[str, Any]:
        """GET one service principal from Microsoft Graph by object id."""
        path = f"/v1.0/servicePrincipals/{quote(object_id, safe='')}"
        body = self._get_json("graph", self._graph_url, GRAPH_SCOPE, path, {"$select": select})
        return body if isinstance(body, dict) else {}

    def call(self, operation: str, target: str, call: Callable[[], _T]) -> _T:
        """Run one blocking call: translate its error, retry throttling and unavailability."""

        def translated() -> _T:
            try:
                return call()
            except Exception as error:
                raise translate(error, operation=operation, target=target) from error

        for attempt in Retrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            reraise=True,
        ):
            with attempt:
                return translated()
        raise AssertionError("tenacity either returns or raises")  # pragma: no cover

    def _wait(self, state: RetryCallState) -> float:
        """Wait what Retry-After asked for, else back off exponentially."""
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        asked = retry_after(error) if error is not None else None
        if asked is not None:
            return asked
        return float(min(self._backoff * 2 ** (state.attempt_number - 1), 8.0))
