"""Azure controls that hold: roles tiered on what they resolve to, the guardrail taking away
what runs code as another identity or rewrites the tags Leash reads, and tags read in any case.

Everything here goes through the real SDK clients (or Leash's real request path) against the
Azure emulator, and what the guardrail did is read back from the emulator.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.access.drafting import RequestInput
from bot.app import Leash, build
from bot.config import Settings
from bot.domain.actors import Actor
from bot.domain.catalog import azure as catalog_azure
from bot.domain.errors import InvalidInputError
from bot.domain.findings import guardrail_actions
from bot.domain.rules import LeastPrivilegeRules
from bot.domain.states import ActorKind, Classification, Tier
from bot.inventory.registry import identity_id_for
from bot.store.tables import Identity, Ownership
from cloud.base import Exemption
from cloud.sandbox import Sandbox
from cloud.sandbox.azure import AzureEmulator
from cloud.sandbox.azure import roles as emulated
from tests.cloud.azure_world import AGENTS, SUPPORT_GROUP, World
from tests.conftest import make_rules

DEV = Actor("dev", ActorKind.USER, "test")
TRIAGE = "support-triage-az-agent"
ROOT = "/providers/Microsoft.Authorization/roleDefinitions/"
CUSTOM = "7d1c5e2a-0b9f-4e3d-a6c8-1f2e3d4c5b6a"  # no built-in role has it
RUN_COMMAND = "Microsoft.Compute/virtualMachines/runCommand/action"
TAG_WRITE = "Microsoft.Resources/tags/write"


@pytest.fixture
def world(azure_emulator: AzureEmulator) -> World:
    azure_emulator.reset()
    return World(azure_emulator)


def test_the_emulator_roles_and_the_catalogue_agree_on_every_guid() -> None:
    for role in (*emulated.BUILT_IN_ROLES, *emulated.CODE_AND_TAG_ROLES):
        assert catalog_azure.canonical_role(role.guid) == role.role_name
        assert catalog_azure.canonical_role(f"{ROOT}{role.guid.upper()}") == role.role_name


# The guardrail, read back from the emulator


async def test_the_guardrail_removes_run_command_and_tag_writes_and_keeps_a_live_exemption(
    world: World,
) -> None:
    agent = world.add("runner-az-agent", tags=["leash:agent=true"])
    subscription = f"/subscriptions/{AGENTS}"
    world.assign(agent, "Virtual Machine Contributor", SUPPORT_GROUP)  # runCommand
    world.assign(agent, "Tag Contributor", subscription)  # tags/write
    world.assign(agent, "Managed Identity Contributor", SUPPORT_GROUP)  # identity tags, FICs
    world.assign(agent, "Automation Contributor", SUPPORT_GROUP)  # exempted below
    world.assign(agent, "Reader", subscription)  # nothing guarded
    now = datetime.now(UTC)
    live = [
        Exemption(action, now + timedelta(hours=1), "g-automation")
        for action in catalog_azure.ROLE_ACTIONS["Automation Contributor"]
    ]
    expired = Exemption(TAG_WRITE, now - timedelta(minutes=1), "g-old-tags")
    guarded = guardrail_actions(LeastPrivilegeRules(), provider="azure")
    assert {RUN_COMMAND, TAG_WRITE} <= set(guarded)

    change = await world.provider().guardrail(agent, guarded, [*live, expired])

    assert world.held(agent) == {
        ("Automation Contributor", SUPPORT_GROUP),
        ("Reader", subscription),
    }
    assert "Virtual Machine Contributor" in (change.before or "")
    assert "Virtual Machine Contributor" not in (change.after or "")
    assert "Automation Contributor" in (change.after or "")


async def test_a_role_conferring_no_guarded_action_stays(world: World) -> None:
    agent = world.add("reader-az-agent", tags=["leash:agent=true"])
    world.assign(agent, "Storage Blob Data Contributor", SUPPORT_GROUP)
    guarded = guardrail_actions(LeastPrivilegeRules(), provider="azure")

    change = await world.provider().guardrail(agent, guarded)

    assert not change.changed
    assert world.held(agent) == {("Storage Blob Data Contributor", SUPPORT_GROUP)}


# Tags in any case


async def test_tag_keys_are_read_in_any_case_and_ambiguous_spellings_dropped(
    world: World,
) -> None:
    world.emulator.add_managed_identity(
        AGENTS,
        "rg-support-bots",
        "caps-az-agent",
        tags={"LEASH:AGENT": "true", "Leash:Owner": "carol@example.com", "TEAM": "payments"},
    )
    two_owners = world.add(
        "two-owners-az-agent",
        tags=["leash:agent=true", "owner=alice@example.com", "OWNER=mallory@example.com"],
    )
    world.assign(two_owners, "Reader")  # discovery lists principals holding a role

    found = {i.ref.name: i for i in (await world.provider().discover()).identities}

    caps = found["caps-az-agent"].tags
    assert caps["leash:agent"] == "true"
    assert caps["leash:owner"] == "carol@example.com"
    assert caps["team"] == "payments"
    assert "owner" not in found["two-owners-az-agent"].tags


# The request path


def _leash(database_url: str, sandbox: Sandbox) -> Leash:
    return build(
        Settings(database_url=database_url, sweep_seconds=60),
        sandbox=sandbox,
        rules=make_rules(admins=["secops"]),
    )


def _ask(*roles: str) -> RequestInput:
    return RequestInput(
        identity=TRIAGE, actions=roles, duration=timedelta(minutes=30), reason="controls test"
    )


async def test_roles_are_stored_by_their_canonical_name_and_tiered_on_it(
    database_url: str, azure_sandbox: Sandbox
) -> None:
    leash = _leash(database_url, azure_sandbox)
    await leash.start(scheduler=False)
    try:
        submit = leash.lifecycle.requests.submit
        by_id = await submit(_ask(f"{ROOT}8e3af657-a8ff-443c-a75c-2fe8c4bcb635"), actor=DEV)
        spaced = await submit(_ask("user access administrator "), actor=DEV)
        vm = await submit(
            _ask(f"/subscriptions/{AGENTS}{ROOT}9980E02C-C2BE-4D73-94E8-173B1DC7CF3C"), actor=DEV
        )
        reader = await submit(_ask("storage  blob data reader"), actor=DEV)
    finally:
        await leash.close()

    assert (by_id.actions, by_id.tier) == (["Owner"], Tier.ESCALATION)
    assert (spaced.actions, spaced.tier) == (["User Access Administrator"], Tier.ESCALATION)
    assert (vm.actions, vm.tier) == (["Virtual Machine Contributor"], Tier.ESCALATION)
    assert (reader.actions, reader.tier) == (["Storage Blob Data Reader"], Tier.NORMAL)


@pytest.mark.parametrize(
    "role",
    [f"/subscriptions/{AGENTS}{ROOT}{CUSTOM}", CUSTOM, "Ownr"],
    ids=["custom-role-id", "custom-guid", "misspelt-name"],
)
async def test_a_role_leash_cannot_resolve_is_refused_at_request_time(
    database_url: str, azure_sandbox: Sandbox, role: str
) -> None:
    leash = _leash(database_url, azure_sandbox)
    await leash.start(scheduler=False)
    try:
        with pytest.raises(InvalidInputError, match="no role definition of that name or id"):
            await leash.lifecycle.requests.submit(_ask(role), actor=DEV)
    finally:
        await leash.close()


async def test_capitalised_tag_keys_choose_the_owner(
    database_url: str, azure_sandbox: Sandbox
) -> None:
    emulator = azure_sandbox.azure
    assert emulator is not None
    principal = emulator.add_managed_identity(
        AGENTS,
        "rg-support-bots",
        "caps-az-agent",
        tags={"LEASH:AGENT": "true", "Leash:Owner": "carol@example.com"},
    )
    leash = _leash(database_url, azure_sandbox)
    await leash.start(scheduler=False)
    try:
        async with leash.context.transaction() as session:
            identity = await session.get(Identity, identity_id_for(principal))
            ownership = await session.get(Ownership, identity_id_for(principal))
    finally:
        await leash.close()

    assert identity is not None
    assert identity.classification == Classification.AI_AGENT
    assert ownership is not None
    assert ownership.primary_owner == "carol@example.com"
