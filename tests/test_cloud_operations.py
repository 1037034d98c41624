"""Leash's own cloud calls are recorded at the emulators' wire and judged against manifests/."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from cloud.base import GrantSpec
from cloud.sandbox import Sandbox
from cloud.sandbox.aws.moto_calls import MotoCall
from cloud.sandbox.azure import AzureEmulator
from cloud.sandbox.azure.permissions import azure_permission
from cloud.sandbox.gcp import GcpEmulator, deny, recommender, resource_manager
from cloud.sandbox.gcp.permissions import rest_permission
from cloud.sandbox.operation_log import CloudOperation
from cloud.user_agent import is_leash, leash_user_agent
from tests.cloud.azure_fixtures import AzureClients as PlainAzureClients
from tests.cloud.azure_world import AGENTS as AZURE_AGENTS
from tests.cloud.contract_world import AwsWorld, AzureWorld, ContractWorld, GcpWorld
from tests.cloud.gcp_fixtures import GcpClients as PlainGcpClients
from tests.manifest_coverage import (
    AWS_GRANT,
    AWS_READ,
    AZURE_ROLE,
    GCP_ROLE,
    MANIFESTS,
    Exercised,
    Manifests,
    exercised,
    missing,
    never_used,
)

ROOT = Path(__file__).resolve().parents[1]
GRANT_ID = "g-ops0001"


async def _drive(world: ContractWorld) -> None:
    """Discover, grant, revoke and read usage, as Leash does for one identity."""
    provider, identity = world.provider, world.identity
    await provider.discover()
    expires_at = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    spec = GrantSpec(GRANT_ID, world.grantable, (), expires_at, world.deny_actions)
    await provider.grant(identity, spec)
    assert await provider.revoke(identity, GRANT_ID) is True
    await provider.usage(identity, datetime.now(UTC) - timedelta(days=90))


class Recorded:
    """What driving each cloud once left in its emulator's log."""

    def __init__(self) -> None:
        self.seeding: list[MotoCall] = []
        self.moto: list[MotoCall] = []
        self.gcp: list[CloudOperation] = []
        self.azure: list[CloudOperation] = []

    def needs(self) -> set[Exercised]:
        operations = [call.as_operation() for call in self.moto] + self.gcp + self.azure
        return {need for need in map(exercised, operations) if need is not None}


@pytest.fixture(scope="module")
def recorded(
    sandbox: Sandbox, gcp_emulator: GcpEmulator, azure_emulator: AzureEmulator
) -> Iterator[Recorded]:
    """Drive each provider once on its freshly reset emulator and keep what was served."""
    seen = Recorded()
    sandbox.reset(seed=False)
    sandbox.seed()  # with plain boto3 (a reset would restore a copy): these are not Leash's
    seen.seeding = sandbox.moto.calls()
    sandbox.moto.clear_calls()
    asyncio.run(_drive(AwsWorld(sandbox)))
    seen.moto = sandbox.moto.calls()

    gcp_emulator.reset()
    asyncio.run(_drive(GcpWorld(gcp_emulator)))
    plain = PlainGcpClients.connect(gcp_emulator)
    plain.projects.get_project(name=f"projects/{gcp_emulator.project_ids[0]}")
    plain.channel.close()
    seen.gcp = gcp_emulator.operations

    azure_emulator.reset()
    azure_world = AzureWorld(azure_emulator)
    asyncio.run(_drive(azure_world))  # PIM on: schedule requests
    azure_emulator.pim_enabled(AZURE_AGENTS, False)
    asyncio.run(_drive(azure_world))  # PIM off: plain role assignments
    list(
        PlainAzureClients.connect(azure_emulator)
        .authorization(AZURE_AGENTS)
        .role_assignments.list_for_subscription()
    )
    seen.azure = azure_emulator.operations
    azure_emulator.reset()
    yield seen
    sandbox.reset()


# (a) the emulators record Leash's operations, and only Leash's are Leash's.


def test_aws_calls_are_recorded_with_service_operation_params_and_role(recorded: Recorded) -> None:
    leash = [call for call in recorded.moto if call.by_leash]
    permissions = {call.permission for call in leash}
    assert {
        "organizations:ListAccounts",
        "sts:AssumeRole",
        "iam:GetAccountAuthorizationDetails",
        "iam:PutRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:GenerateServiceLastAccessedDetails",
    } <= permissions
    deletes = [call for call in leash if call.operation == "DeleteRolePolicy"]
    assert [(c.service, c.params["PolicyName"], c.caller_role) for c in deletes] == [
        ("iam", f"leash-grant-{GRANT_ID}", "LeashGrantManager")
    ]
    listing = next(call for call in leash if call.operation == "ListAccounts")
    assert (listing.service, listing.caller_role) == ("organizations", "")  # own credentials
    assert all(leash_user_agent() in call.user_agent for call in leash)


def test_seeding_calls_are_recorded_but_not_attributed_to_leash(recorded: Recorded) -> None:
    assert {"iam:CreateRole", "organizations:CreateAccount"} <= {
        call.permission for call in recorded.seeding
    }
    assert not any(call.by_leash for call in recorded.seeding)
    assert not any(
        need for need in map(exercised, [c.as_operation() for c in recorded.seeding]) if need
    )


def test_gcp_operations_carry_the_permission_google_checks(recorded: Recorded) -> None:
    leash = {op.permission for op in recorded.gcp if op.by_leash}
    assert {
        "resourcemanager.projects.list",
        "iam.serviceAccounts.list",  # over gRPC
        "resourcemanager.projects.getIamPolicy",
        "resourcemanager.projects.setIamPolicy",
        "iam.denypolicies.create",
        "recommender.iamPolicyRecommendations.list",
    } <= leash
    plain = [op for op in recorded.gcp if not op.by_leash]
    assert [(op.operation, op.permission) for op in plain] == [
        ("projects.get", "resourcemanager.projects.get")
    ]


def test_azure_operations_carry_the_rbac_operation_or_graph_permission(
    recorded: Recorded,
) -> None:
    leash = {op.permission for op in recorded.azure if op.by_leash}
    assert {
        "Microsoft.Resources/subscriptions/read",
        "Microsoft.Authorization/roleAssignmentScheduleRequests/write",
        "Microsoft.Authorization/roleAssignments/write",
        "Microsoft.Authorization/roleAssignments/delete",
        "Microsoft.Insights/eventtypes/values/read",
        "graph:Application.Read.All",
    } <= leash
    plain = [op for op in recorded.azure if not op.by_leash]
    assert [op.permission for op in plain] == ["Microsoft.Authorization/roleAssignments/read"]


@pytest.mark.parametrize(
    ("verb", "path", "graph", "expected"),
    [
        ("GET", "/subscriptions", False, "Microsoft.Resources/subscriptions/read"),
        (
            "PUT",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Authorization/roleAssignments/a",
            False,
            "Microsoft.Authorization/roleAssignments/write",
        ),
        (
            "GET",
            "/subscriptions/s/providers/Microsoft.Insights/eventtypes/management/values",
            False,
            "Microsoft.Insights/eventtypes/values/read",
        ),
        (
            "POST",
            "/s/providers/Microsoft.Authorization/roleAssignmentScheduleRequests/r/cancel",
            False,
            "Microsoft.Authorization/roleAssignmentScheduleRequests/cancel/action",
        ),
        ("GET", "/v1.0/servicePrincipals(appId='x')", True, "graph:Application.Read.All"),
    ],
    ids=["subscriptions", "assignment-put", "activity-log", "post-action", "graph"],
)
def test_azure_requests_map_to_what_azure_authorizes(
    verb: str, path: str, graph: bool, expected: str
) -> None:
    assert azure_permission(verb, path, is_graph=graph) == expected


def test_every_gcp_rest_route_knows_its_permission() -> None:
    for route in [*resource_manager.ROUTES, *deny.ROUTES, *recommender.ROUTES]:
        params = {"type": recommender.IAM_RECOMMENDER}
        permission = rest_permission(route.service, route.method, params)
        assert "unknown" not in permission, route.method


def test_the_user_agent_names_leash_and_its_version() -> None:
    assert leash_user_agent().startswith("leash/")
    assert is_leash(f"Boto3/1.44 Botocore/1.44 {leash_user_agent()}")
    assert not is_leash("Boto3/1.44 Botocore/1.44 leash-tests/1")


# (b) the checker: the real manifests grant all of it; a removed permission is reported.


def test_the_manifests_grant_every_operation_leash_called(recorded: Recorded) -> None:
    assert missing(recorded.needs(), Manifests()) == []


def _without(root: Path, manifest: str, permission: str) -> None:
    path = root / manifest
    if manifest == GCP_ROLE:
        role = yaml.safe_load(path.read_text(encoding="utf-8"))
        role["includedPermissions"].remove(permission)
        path.write_text(yaml.safe_dump(role), encoding="utf-8")
        return
    document = json.loads(path.read_text(encoding="utf-8"))
    if manifest == AZURE_ROLE:
        document["Actions"].remove(permission)
    else:
        for statement in document["Statement"]:
            actions = statement["Action"]
            if isinstance(actions, list) and permission in actions:
                actions.remove(permission)
    path.write_text(json.dumps(document), encoding="utf-8")


@pytest.mark.parametrize(
    ("manifest", "permission", "expected"),
    [
        (
            AWS_GRANT,
            "iam:DeleteRolePolicy",
            Exercised("aws", "iam:DeleteRolePolicy", "LeashGrantManager"),
        ),
        (
            AWS_READ,
            "iam:GetAccountAuthorizationDetails",
            Exercised("aws", "iam:GetAccountAuthorizationDetails", "LeashReadOnly"),
        ),
        (GCP_ROLE, "iam.serviceAccounts.list", Exercised("gcp", "iam.serviceAccounts.list")),
        (
            AZURE_ROLE,
            "Microsoft.Authorization/roleAssignments/write",
            Exercised("azure", "Microsoft.Authorization/roleAssignments/write"),
        ),
    ],
    ids=["aws-grant-role", "aws-read-role", "gcp-role", "azure-role"],
)
def test_a_used_permission_removed_from_a_manifest_is_reported_missing(
    recorded: Recorded, tmp_path: Path, manifest: str, permission: str, expected: Exercised
) -> None:
    root = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, root)
    _without(root, manifest, permission)

    assert missing(recorded.needs(), Manifests(root)) == [expected]


def test_each_member_role_must_grant_what_is_called_through_it() -> None:
    """The management policy allows iam:PutRolePolicy; the read-only role does not."""
    through_read_role = Exercised("aws", "iam:PutRolePolicy", "LeashReadOnly")
    with_own_credentials = Exercised("aws", "iam:PutRolePolicy", "")

    assert missing([through_read_role, with_own_credentials], Manifests()) == [through_read_role]


def test_a_granted_permission_no_call_needed_is_reported_never_used(
    recorded: Recorded, tmp_path: Path
) -> None:
    root = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, root)
    role = yaml.safe_load((root / GCP_ROLE).read_text(encoding="utf-8"))
    role["includedPermissions"].append("iam.serviceAccounts.delete")
    (root / GCP_ROLE).write_text(yaml.safe_dump(role), encoding="utf-8")

    unused = never_used(recorded.needs(), Manifests(root))

    assert "iam.serviceAccounts.delete" in unused[GCP_ROLE]
    assert "iam.serviceAccounts.list" not in unused[GCP_ROLE]
    assert missing(recorded.needs(), Manifests(root)) == []


def test_a_session_whose_leash_calls_a_manifest_lacks_fails(tmp_path: Path) -> None:
    """The plugin fails a run whose tests all pass when Leash called an ungranted operation."""
    test_file = tmp_path / "test_ungranted.py"
    test_file.write_text(
        textwrap.dedent(
            """
            from cloud.gcp.clients import GcpClients
            from cloud.sandbox.gcp import GcpEmulator
            from cloud.sandbox.gcp.seed import FOLDER_NUMBER

            def test_reads_a_folder_policy():
                emulator = GcpEmulator.start()
                try:
                    clients = GcpClients(
                        credentials=None, rest_endpoint=emulator.rest_endpoint,
                        grpc_target=emulator.grpc_target, max_attempts=1,
                        conflict_attempts=1, backoff=0.01,
                    )
                    folder = f"folders/{FOLDER_NUMBER}"
                    assert clients.folders().get_iam_policy(resource=folder).etag
                finally:
                    emulator.stop()
            """
        ),
        encoding="utf-8",
    )
    run = subprocess.run(  # noqa: S603 - this interpreter, our own test file
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:xdist",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.cloud_operations",
            str(test_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert "1 passed" in run.stdout, run.stdout + run.stderr
    assert run.returncode == 1, run.stdout
    assert "gcp resourcemanager.folders.getIamPolicy" in run.stdout
    assert "test_ungranted.py::test_reads_a_folder_policy" in run.stdout


# (c) recording hands moto the body it was sent.


def test_recording_leaves_the_body_intact(fresh_sandbox: Sandbox) -> None:
    iam = fresh_sandbox.session().client("iam", endpoint_url=fresh_sandbox.endpoint_url)
    organizations = fresh_sandbox.session().client(
        "organizations", endpoint_url=fresh_sandbox.endpoint_url
    )
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::" + "b" * 3000}
        ],
    }
    iam.create_role(RoleName="body-check", AssumeRolePolicyDocument=json.dumps(document))
    iam.put_role_policy(
        RoleName="body-check", PolicyName="p & q=1", PolicyDocument=json.dumps(document)
    )
    fresh_sandbox.moto.clear_calls()

    read = iam.get_role_policy(RoleName="body-check", PolicyName="p & q=1")
    accounts = organizations.list_accounts(MaxResults=2)

    assert read["PolicyDocument"] == document
    assert len(accounts["Accounts"]) == 2  # the JSON body's MaxResults reached moto
    calls = fresh_sandbox.moto.calls()
    assert [(c.service, c.operation) for c in calls] == [
        ("iam", "GetRolePolicy"),
        ("organizations", "ListAccounts"),
    ]
    assert calls[0].params["PolicyName"] == "p & q=1"
    assert calls[1].params["MaxResults"] == "2"
    assert not any(call.by_leash for call in calls)
