"""Azure roles are tiered on the actions and data actions they carry, custom roles included.

Custom roles are created in the Azure emulator through the real SDK (a PUT ARM answers), and
requests go through Leash's real lifecycle: the Azure provider resolves each role in the
identity's subscription, and the policy tiers it on what the definition carries. Nothing here
is mocked.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.authorization.models import Permission, RoleDefinition
from sqlmodel import select

from bot.access.drafting import RequestInput
from bot.app import Leash, build
from bot.config import Settings
from bot.domain.actors import Actor
from bot.domain.catalog import azure as catalog_azure
from bot.domain.errors import InvalidInputError
from bot.domain.states import ActorKind, Tier
from bot.store.tables import AccessRequest
from cloud.sandbox import Sandbox
from cloud.sandbox.azure import AzureEmulator
from tests.cloud.azure_fixtures import AzureClients
from tests.cloud.azure_world import AGENTS, DATA, define_role
from tests.conftest import make_rules

DEV = Actor("dev", ActorKind.USER, "test")
TRIAGE = "support-triage-az-agent"
ROLE_WRITE = "Microsoft.Authorization/roleAssignments/write"
LIST_KEYS = "Microsoft.Storage/storageAccounts/listKeys/action"
CONTAINERS_READ = "Microsoft.Storage/storageAccounts/blobServices/containers/read"
# What `Microsoft.Compute/*` covers in the catalogue, each taken back by one notAction: VM and
# scale-set commands and extensions, a scale set's model, logging in (IMDS), and disk or
# snapshot SAS URLs.
COMPUTE_EXCLUSIONS = {
    "Microsoft.Compute/virtualMachines/runCommand/action": Tier.ESCALATION,
    "Microsoft.Compute/virtualMachines/runCommands/write": Tier.ESCALATION,
    "Microsoft.Compute/virtualMachines/extensions/write": Tier.ESCALATION,
    "Microsoft.Compute/virtualMachines/login/action": Tier.ESCALATION,
    "Microsoft.Compute/virtualMachines/loginAsAdmin/action": Tier.ESCALATION,
    "Microsoft.Compute/virtualMachineScaleSets/write": Tier.ESCALATION,
    "Microsoft.Compute/virtualMachineScaleSets/extensions/write": Tier.ESCALATION,
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/runCommand/action": Tier.ESCALATION,
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/runCommands/write": Tier.ESCALATION,
    "Microsoft.Compute/disks/beginGetAccess/action": Tier.ESCALATION,  # credential
    "Microsoft.Compute/snapshots/beginGetAccess/action": Tier.ESCALATION,  # credential
}


@pytest.fixture
async def leash(database_url: str, azure_sandbox: Sandbox) -> AsyncIterator[Leash]:
    """Leash on the emulator, started after each test's custom roles exist (see `_start`)."""
    built = build(
        Settings(database_url=database_url, sweep_seconds=60),
        sandbox=azure_sandbox,
        # Tests here ask for many roles on one identity, each left waiting: above the default
        # cap of requests waiting per identity (5).
        rules=make_rules(admins=["secops"], requests={"max_pending_per_identity": 20}),
    )
    yield built
    await built.close()


@pytest.fixture
def emulator(azure_sandbox: Sandbox) -> AzureEmulator:
    assert azure_sandbox.azure is not None
    return azure_sandbox.azure


def _ask(*roles: str) -> RequestInput:
    return RequestInput(
        identity=TRIAGE, actions=roles, duration=timedelta(minutes=30), reason="tiers test"
    )


async def _submit(leash: Leash, *roles: str) -> AccessRequest:
    return await leash.lifecycle.requests.submit(_ask(*roles), actor=DEV)


def _guid(role_id: str) -> str:
    return role_id.rsplit("/", 1)[-1]


# Custom roles, through the lifecycle


@pytest.mark.parametrize(
    "how",
    ["odd-case-and-spacing", "full-id", "bare-guid", "bare-guid-upper"],
)
async def test_a_custom_role_that_assigns_roles_is_escalation_however_it_is_asked(
    leash: Leash, emulator: AzureEmulator, how: str
) -> None:
    role_id = define_role(
        emulator,
        "Deploy Helper",
        actions=("*/read", ROLE_WRITE.upper()),  # Azure compares actions in any case
    )
    asked = {
        "odd-case-and-spacing": "  dEPLOY    helper ",
        "full-id": role_id,
        "bare-guid": _guid(role_id),
        "bare-guid-upper": _guid(role_id).upper(),
    }[how]
    await leash.start(scheduler=False)

    request = await _submit(leash, asked)

    assert request.actions == ["Deploy Helper"]  # the cloud's own name, however asked
    assert request.tier is Tier.ESCALATION
    assert any(
        f"Deploy Helper carries {ROLE_WRITE}" in reason  # Azure's spelling of what decided
        for reason in request.decision_reasons
    ), request.decision_reasons


async def test_compute_star_without_its_guarded_actions_is_privileged_not_escalation(
    leash: Leash, emulator: AzureEmulator
) -> None:
    define_role(
        emulator,
        "Compute Operator",
        actions=("Microsoft.Compute/*", "*/read"),
        not_actions=tuple(COMPUTE_EXCLUSIONS),
    )
    await leash.start(scheduler=False)

    request = await _submit(leash, "compute operator")

    # What is left of Microsoft.Compute/* still deletes any VM, disk or scale set.
    assert request.tier is Tier.PRIVILEGED
    assert any(
        "Compute Operator carries Microsoft.Compute/* (covers Microsoft.Compute/*/delete)" in r
        for r in request.decision_reasons
    ), request.decision_reasons


def test_the_compute_exclusions_are_everything_compute_star_covers_in_the_catalogue() -> None:
    covered = {
        action.lower()
        for action, _ in catalog_azure.catalogued_actions()
        if action.lower().startswith("microsoft.compute/")
    }
    assert covered == {action.lower() for action in COMPUTE_EXCLUSIONS}


async def test_compute_star_keeping_any_one_guarded_action_is_escalation_and_says_which(
    leash: Leash, emulator: AzureEmulator
) -> None:
    names = {kept: f"Compute Operator {n}" for n, kept in enumerate(COMPUTE_EXCLUSIONS)}
    for kept, name in names.items():
        define_role(
            emulator,
            name,
            actions=("Microsoft.Compute/*",),
            not_actions=tuple(a for a in COMPUTE_EXCLUSIONS if a != kept),
        )
    await leash.start(scheduler=False)

    decided = {}
    for kept, name in names.items():
        request = await _submit(leash, name)
        said = [r for r in request.decision_reasons if "(covers " in r]
        decided[kept] = (request.tier, said[0].rsplit("(covers ", 1)[-1].rstrip(")"))

    assert decided == {kept: (tier, kept) for kept, tier in COMPUTE_EXCLUSIONS.items()}


async def test_a_custom_role_reading_blob_containers_only_is_normal(
    leash: Leash, emulator: AzureEmulator
) -> None:
    define_role(emulator, "Container Lister", actions=(CONTAINERS_READ,))
    await leash.start(scheduler=False)

    request = await _submit(leash, "Container Lister")

    assert (request.actions, request.tier) == (["Container Lister"], Tier.NORMAL)
    assert "no privileged action: tier normal" in request.decision_reasons


@pytest.mark.parametrize(
    ("actions", "data_actions", "decided"),
    [
        ((LIST_KEYS,), (), LIST_KEYS),
        (("Microsoft.Storage/storageAccounts/*",), (), LIST_KEYS),
        (("microsoft.web/SITES/config/list/action",), (), "Microsoft.Web/sites/config/list/action"),
        ((), ("Microsoft.KeyVault/vaults/secrets/*",), "secrets/getSecret/action"),
    ],
    ids=["list-keys", "storage-star", "web-config-list-any-case", "key-vault-secrets-star"],
)
async def test_a_custom_role_that_hands_out_credentials_is_escalation(
    leash: Leash,
    emulator: AzureEmulator,
    actions: tuple[str, ...],
    data_actions: tuple[str, ...],
    decided: str,
) -> None:
    define_role(emulator, "Key Reader", actions=actions, data_actions=data_actions)
    await leash.start(scheduler=False)

    request = await _submit(leash, "Key Reader")

    assert request.tier is Tier.ESCALATION
    assert any("credential" in r for r in request.decision_reasons), request.decision_reasons
    assert any(decided in r for r in request.decision_reasons), request.decision_reasons


async def test_reading_a_secrets_metadata_is_not_a_credential(
    leash: Leash, emulator: AzureEmulator
) -> None:
    define_role(
        emulator,
        "Secret Lister",
        data_actions=("Microsoft.KeyVault/vaults/secrets/readMetadata/action",),
    )
    await leash.start(scheduler=False)

    assert (await _submit(leash, "Secret Lister")).tier is Tier.NORMAL


@pytest.mark.parametrize(
    ("role", "decided"),
    [
        ("Virtual Machine Contributor", "Microsoft.Compute/virtualMachines/runCommand/action"),
        ("Automation Contributor", "Microsoft.Automation/automationAccounts/runbooks/write"),
    ],
    ids=["virtual-machine-contributor", "automation-contributor"],
)
async def test_built_in_code_runners_and_their_custom_copies_are_escalation(
    leash: Leash, emulator: AzureEmulator, role: str, decided: str
) -> None:
    built_in = next(
        r for r in _definitions(emulator) if r.role_name == role and r.role_type == "BuiltInRole"
    )
    (permissions,) = built_in.permissions
    define_role(
        emulator,
        "Harmless Helper",  # the same definition under a name no catalogue lists
        actions=tuple(permissions.actions),
        not_actions=tuple(permissions.not_actions),
    )
    await leash.start(scheduler=False)

    built_in_request = await _submit(leash, role.lower())
    copy = await _submit(leash, "Harmless Helper")

    assert (built_in_request.actions, built_in_request.tier) == ([role], Tier.ESCALATION)
    assert copy.tier is Tier.ESCALATION
    for request in (built_in_request, copy):
        assert any(f"(covers {decided})" in r for r in request.decision_reasons)


async def test_owner_and_contributor_stay_escalation_not_break_glass(leash: Leash) -> None:
    await leash.start(scheduler=False)

    owner = await _submit(leash, "owner")
    contributor = await _submit(leash, "CONTRIBUTOR")

    assert (owner.tier, contributor.tier) == (Tier.ESCALATION, Tier.ESCALATION)
    assert any("Owner carries * (covers" in r for r in owner.decision_reasons)


@pytest.mark.parametrize(
    "asked",
    [
        "Deploy Helpr",
        f"/subscriptions/{AGENTS}/providers/Microsoft.Authorization/roleDefinitions/"
        "0b7c2d4e-1f3a-4b5c-8d6e-7f8091a2b3c4",
        "0b7c2d4e-1f3a-4b5c-8d6e-7f8091a2b3c4",
    ],
    ids=["misspelt-name", "unknown-id", "unknown-guid"],
)
async def test_a_role_that_does_not_exist_is_refused_and_nothing_is_stored(
    leash: Leash, emulator: AzureEmulator, asked: str
) -> None:
    define_role(emulator, "Deploy Helper", actions=(ROLE_WRITE,))
    await leash.start(scheduler=False)

    with pytest.raises(InvalidInputError) as refused:
        await _submit(leash, asked)

    message = str(refused.value)
    assert f"no role definition of that name or id in subscription {AGENTS}" in message
    assert "grants only what the cloud resolves" in message
    async with leash.context.transaction() as session:
        stored = (await session.exec(select(AccessRequest))).all()
    assert stored == []


async def test_a_custom_role_of_another_subscription_does_not_resolve(
    leash: Leash, emulator: AzureEmulator
) -> None:
    define_role(emulator, "Data Writer", actions=(ROLE_WRITE,), subscription=DATA)
    await leash.start(scheduler=False)

    with pytest.raises(InvalidInputError, match="no role definition of that name or id"):
        await _submit(leash, "Data Writer")  # the triage agent lives in the agents subscription


# Custom roles in the emulator, through the real SDK


def _definitions(emulator: AzureEmulator, scope: str = f"/subscriptions/{AGENTS}") -> list[Any]:
    clients = AzureClients.connect(emulator)
    try:
        return list(clients.authorization(AGENTS).role_definitions.list(scope))
    finally:
        clients.close()


def test_a_custom_role_is_created_read_listed_and_filtered_by_name(
    emulator: AzureEmulator,
) -> None:
    role_id = define_role(
        emulator,
        "Deploy Helper",
        actions=(ROLE_WRITE,),
        not_actions=("Microsoft.Authorization/roleAssignments/delete",),
        data_actions=("Microsoft.KeyVault/vaults/secrets/getSecret/action",),
    )
    clients = AzureClients.connect(emulator)
    try:
        auth = clients.authorization(AGENTS)
        read = auth.role_definitions.get_by_id(role_id)
        by_guid = auth.role_definitions.get(f"/subscriptions/{AGENTS}", _guid(role_id))
        named = list(
            auth.role_definitions.list(
                f"/subscriptions/{AGENTS}", filter="roleName eq 'Deploy Helper'"
            )
        )
        custom = list(
            auth.role_definitions.list(f"/subscriptions/{AGENTS}", filter="type eq 'CustomRole'")
        )
        elsewhere = list(auth.role_definitions.list(f"/subscriptions/{DATA}"))
    finally:
        clients.close()

    assert read.role_name == by_guid.role_name == "Deploy Helper"
    assert read.role_type == "CustomRole"
    assert read.assignable_scopes == [f"/subscriptions/{AGENTS}"]
    (permissions,) = read.permissions
    assert permissions.actions == [ROLE_WRITE]
    assert permissions.not_actions == ["Microsoft.Authorization/roleAssignments/delete"]
    assert permissions.data_actions == ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
    assert [r.id for r in named] == [role_id]
    assert [r.role_name for r in custom] == ["Deploy Helper"]
    assert "Deploy Helper" not in {r.role_name for r in elsewhere}  # not assignable there


def test_a_missing_role_definition_is_404_role_definition_does_not_exist(
    emulator: AzureEmulator,
) -> None:
    clients = AzureClients.connect(emulator)
    try:
        with pytest.raises(ResourceNotFoundError) as raised:
            clients.authorization(AGENTS).role_definitions.get_by_id(
                f"/subscriptions/{AGENTS}/providers/Microsoft.Authorization/roleDefinitions/"
                f"{uuid.uuid4()}"
            )
    finally:
        clients.close()

    assert raised.value.status_code == 404
    assert raised.value.error is not None
    assert raised.value.error.code == "RoleDefinitionDoesNotExist"


def test_a_second_custom_role_of_the_same_name_is_a_409(emulator: AzureEmulator) -> None:
    define_role(emulator, "Deploy Helper", actions=(ROLE_WRITE,))

    with pytest.raises(ResourceExistsError) as raised:
        define_role(emulator, "deploy helper", actions=("*/read",))

    assert raised.value.error is not None
    assert raised.value.error.code == "RoleDefinitionWithSameNameExists"


def test_a_built_in_role_cannot_be_overwritten(emulator: AzureEmulator) -> None:
    owner = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
    clients = AzureClients.connect(emulator)
    try:
        with pytest.raises(HttpResponseError) as raised:
            clients.authorization(AGENTS).role_definitions.create_or_update(
                f"/subscriptions/{AGENTS}",
                owner,
                RoleDefinition(
                    role_name="Owner",
                    role_type="CustomRole",
                    permissions=[Permission(actions=["*/read"])],
                    assignable_scopes=[f"/subscriptions/{AGENTS}"],
                ),
            )
    finally:
        clients.close()

    assert raised.value.status_code == 403
    assert any(
        r.role_name == "Owner" and r.role_type == "BuiltInRole" for r in _definitions(emulator)
    )
