"""Real google-cloud clients pointed at a GcpEmulator, built the way a provider would build them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.api_core.operation import Operation
from google.auth.credentials import AnonymousCredentials
from google.cloud import iam_admin_v1, iam_v2, recommender_v1, resourcemanager_v3
from google.cloud.iam_admin_v1.services.iam.transports import IAMGrpcTransport

from cloud.sandbox.gcp import GcpEmulator


def anonymous() -> AnonymousCredentials:
    """Return credentials that sign nothing (the emulator checks none)."""
    return AnonymousCredentials()  # type: ignore[no-untyped-call]


@dataclass(slots=True)
class GcpClients:
    """One client per emulated API, and the gRPC channel to close after them."""

    projects: resourcemanager_v3.ProjectsClient
    folders: resourcemanager_v3.FoldersClient
    deny: iam_v2.PoliciesClient
    recommender: recommender_v1.RecommenderClient
    iam: iam_admin_v1.IAMClient
    channel: Any

    @classmethod
    def connect(cls, emulator: GcpEmulator) -> GcpClients:
        """Build REST clients on the emulator's endpoint and the IAM client on its gRPC target."""
        rest: dict[str, Any] = {
            "transport": "rest",
            "client_options": {"api_endpoint": emulator.rest_endpoint},
            "credentials": anonymous(),
        }
        channel = grpc.insecure_channel(emulator.grpc_target)
        return cls(
            projects=resourcemanager_v3.ProjectsClient(**rest),
            folders=resourcemanager_v3.FoldersClient(**rest),
            deny=iam_v2.PoliciesClient(**rest),
            recommender=recommender_v1.RecommenderClient(**rest),
            iam=iam_admin_v1.IAMClient(
                transport=IAMGrpcTransport(channel=channel, credentials=anonymous())
            ),
            channel=channel,
        )

    def close(self) -> None:
        """Close the gRPC channel."""
        self.channel.close()


def sa_member(email: str) -> str:
    """Return a service account as an allow-policy member."""
    return f"serviceAccount:{email}"


def deny_parent(project_id: str) -> str:
    """Return the deny-policy parent of a project, URL-encoded once as the API wants it."""
    return f"policies/cloudresourcemanager.googleapis.com%2Fprojects%2F{project_id}/denypolicies"


def finished(operation: Operation) -> Any:
    """Return the result of a long-running operation the emulator answered as already done."""
    assert operation.done()  # type: ignore[no-untyped-call]
    return operation.result()  # type: ignore[no-untyped-call]
