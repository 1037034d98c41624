"""Build Google Cloud clients lazily, and call them with errors translated and throttling retried.

Against Google the clients use `google.auth.default()` (resolved at first use) and their
default endpoints. Against the sandbox emulator (`rest_endpoint`, `grpc_target`) the REST
clients talk plain HTTP to it and the IAM Admin client, which has no REST transport, an
insecure gRPC channel; both with anonymous credentials unless others are given.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import google.auth
import grpc  # type: ignore[import-untyped]
from google.api_core.gapic_v1.client_info import ClientInfo
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud import iam_admin_v1, iam_v2, recommender_v1, resourcemanager_v3
from google.cloud.iam_admin_v1.services.iam.transports import IAMGrpcTransport
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from cloud.base import CloudError
from cloud.gcp.errors import translate
from cloud.user_agent import leash_user_agent

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
# Long-running deny-policy operations are awaited at most this long.
OPERATION_TIMEOUT = 120.0
_T = TypeVar("_T")


def _client_info() -> ClientInfo:
    """Return the client info that puts `leash/<version>` first in the user agent."""
    # Both transports send it in x-goog-api-client, the header Google reads for client info.
    return ClientInfo(user_agent=leash_user_agent())  # type: ignore[no-untyped-call]


def _retryable(error: BaseException) -> bool:
    return isinstance(error, CloudError) and error.retryable


class GcpClients:
    """Hand out one client per API, built on first use, and run calls through `call`."""

    def __init__(
        self,
        *,
        credentials: Credentials | None,
        rest_endpoint: str | None,
        grpc_target: str | None,
        max_attempts: int,
        conflict_attempts: int,
        backoff: float,
    ) -> None:
        self._given = credentials
        self._rest_endpoint = rest_endpoint
        self._grpc_target = grpc_target
        self._max_attempts = max_attempts
        self._conflict_attempts = conflict_attempts
        self._backoff = backoff
        self._lock = threading.Lock()
        self._credentials: Credentials | None = None
        self._default_project: str | None = None
        self._clients: dict[str, Any] = {}

    def _resolve(self) -> Credentials:
        """Return the credentials, asking google.auth for the defaults on first use."""
        if self._credentials is not None:
            return self._credentials
        if self._given is not None:
            self._credentials = self._given
        elif self._rest_endpoint or self._grpc_target:
            self._credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        else:
            try:
                self._credentials, self._default_project = google.auth.default(scopes=SCOPES)
            except Exception as error:
                raise translate(
                    error, operation="auth.default", target="Leash's own credentials"
                ) from error
        return self._credentials

    def default_project(self) -> str | None:
        """Return the project google.auth's defaults name, if any (None against the emulator)."""
        with self._lock:
            self._resolve()
            return self._default_project

    def _rest_options(self) -> dict[str, Any]:
        return {"api_endpoint": self._rest_endpoint} if self._rest_endpoint else {}

    def _client(self, key: str, build: Callable[[Credentials], _T]) -> _T:
        with self._lock:
            if key not in self._clients:
                self._clients[key] = build(self._resolve())
            client: _T = self._clients[key]
            return client

    def projects(self) -> resourcemanager_v3.ProjectsClient:
        """Return the Resource Manager projects client (REST)."""
        return self._client(
            "projects",
            lambda credentials: resourcemanager_v3.ProjectsClient(
                credentials=credentials,
                transport="rest",
                client_options=self._rest_options(),
                client_info=_client_info(),
            ),
        )

    def folders(self) -> resourcemanager_v3.FoldersClient:
        """Return the Resource Manager folders client (REST)."""
        return self._client(
            "folders",
            lambda credentials: resourcemanager_v3.FoldersClient(
                credentials=credentials,
                transport="rest",
                client_options=self._rest_options(),
                client_info=_client_info(),
            ),
        )

    def policies(self) -> iam_v2.PoliciesClient:
        """Return the IAM v2 (deny policies) client (REST)."""
        return self._client(
            "policies",
            lambda credentials: iam_v2.PoliciesClient(
                credentials=credentials,
                transport="rest",
                client_options=self._rest_options(),
                client_info=_client_info(),
            ),
        )

    def recommender(self) -> recommender_v1.RecommenderClient:
        """Return the Recommender client (REST)."""
        return self._client(
            "recommender",
            lambda credentials: recommender_v1.RecommenderClient(
                credentials=credentials,
                transport="rest",
                client_options=self._rest_options(),
                client_info=_client_info(),
            ),
        )

    def iam(self) -> iam_admin_v1.IAMClient:
        """Return the IAM Admin client (service accounts, roles), which speaks gRPC only."""
        return self._client("iam", self._build_iam)

    def _build_iam(self, credentials: Credentials) -> iam_admin_v1.IAMClient:
        if self._grpc_target is None:
            return iam_admin_v1.IAMClient(credentials=credentials, client_info=_client_info())
        channel = grpc.insecure_channel(
            self._grpc_target, options=[("grpc.primary_user_agent", leash_user_agent())]
        )
        transport = IAMGrpcTransport(
            channel=channel, credentials=credentials, client_info=_client_info()
        )
        return iam_admin_v1.IAMClient(transport=transport)

    def call(self, operation: str, target: str, call: Callable[[], _T]) -> _T:
        """Run one blocking call: translate its error, retry throttling and unavailability."""

        def translated() -> _T:
            try:
                return call()
            except Exception as error:
                raise translate(error, operation=operation, target=target) from error

        return self._run(translated, retry=_retryable, attempts=self._max_attempts)

    def retried(self, call: Callable[[], _T], *, retry: Callable[[BaseException], bool]) -> _T:
        """Run a read-modify-write again, re-reading, while `retry` calls its error a conflict."""
        return self._run(call, retry=retry, attempts=self._conflict_attempts)

    def _run(
        self, call: Callable[[], _T], *, retry: Callable[[BaseException], bool], attempts: int
    ) -> _T:
        """Try `call` up to `attempts` times with jittered exponential waits between."""
        for attempt in Retrying(
            retry=retry_if_exception(retry),
            stop=stop_after_attempt(attempts),
            wait=wait_exponential_jitter(
                multiplier=self._backoff, max=max(self._backoff, 8.0), jitter=self._backoff
            ),
            reraise=True,
        ):
            with attempt:
                return call()
        raise AssertionError("tenacity either returns or raises")  # pragma: no cover
