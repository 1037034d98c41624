"""Google Cloud tiers from resolved permissions (issue 17): custom and predefined roles are
tiered on what IAM says they carry, asked through Leash's request path against the emulator.

Also the emulator's custom roles (IAM admin `CreateRole` / `GetRole`), how long Leash trusts
what it read of one, and the permissions deny policies cannot hold.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from google.api_core import exceptions
from google.cloud import iam_admin_v1
from sqlmodel import select

from bot.access.drafting import RequestInput
from bot.app import Leash, build
from bot.config import Settings
from bot.domain import catalog
from bot.domain.actors import Actor
from bot.domain.catalog import ActionCategory
from bot.domain.catalog import gcp as catalog_gcp
from bot.domain.errors import InvalidInputError
from bot.domain.findings import guardrail_actions
from bot.domain.rules import LeastPrivilegeRules
from bot.domain.states import ActorKind, Tier
from bot.store.tables import AccessRequest
from cloud.base import CloudError, ResolvedItem
from cloud.gcp.usage import CUSTOM_ROLE_LIFETIME, RoleCatalog
from cloud.sandbox import Sandbox
from cloud.sandbox.gcp import GcpEmulator
from cloud.sandbox.gcp.roles import PREDEFINED_ROLES
from cloud.sandbox.gcp.state import ApiCall
from tests.cloud.gcp_emulator import emulator, world
from tests.cloud.gcp_fixtures import GcpClients
from tests.cloud.gcp_world import TRIAGE, World
from tests.conftest import make_rules

__all__ = ["emulator", "world"]  # fixtures this module uses

DEV = Actor("dev", ActorKind.USER, "test")
PROJECT = "leash-demo-agents"
PROJECT_NUMBER = "300000000011"
ACT_AS = "iam.serviceAccounts.actAs"
KEYS = "iam.serviceAccountKeys.create"


# Through Leash's request path (drafting resolves with IAM roles.get, the policy tiers).


@pytest.fixture
async def leash(database_url: str, gcp_sandbox: Sandbox) -> AsyncIterator[Leash]:
    app = build(
        Settings(database_url=database_url, sweep_seconds=60),
        sandbox=gcp_sandbox,
        rules=make_rules(admins=["secops"]),
    )
    await app.start(scheduler=False)
    yield app
    await app.close()


def _emulator(sandbox: Sandbox) -> GcpEmulator:
    assert sandbox.gcp is not None
    return sandbox.gcp


async def _ask(leash: Leash, *roles: str) -> AccessRequest:
    return await leash.lifecycle.requests.submit(
        RequestInput(
            identity=TRIAGE, actions=roles, duration=timedelta(minutes=30), reason="tiers test"
        ),
        actor=DEV,
    )


@pytest.mark.parametrize(
    ("permissions", "tier", "deciding"),
    [
        ((ACT_AS, "storage.objects.get"), Tier.ESCALATION, ACT_AS),
        (("storage.objects.get",), Tier.NORMAL, None),
        ((KEYS,), Tier.ESCALATION, KEYS),
        (("secretmanager.versions.access",), Tier.PRIVILEGED, "secretmanager.versions.access"),
    ],
    ids=["act-as", "object-reader", "key-minter", "secret-reader"],
)
async def test_a_custom_role_is_tiered_on_the_permissions_it_carries(
    leash: Leash,
    gcp_sandbox: Sandbox,
    permissions: tuple[str, ...],
    tier: Tier,
    deciding: str | None,
) -> None:
    role = _emulator(gcp_sandbox).add_custom_role(f"projects/{PROJECT}", "agentRunner", permissions)

    request = await _ask(leash, role)

    assert request.actions == [role]
    assert request.tier is tier, request.decision_reasons
    if deciding is None:
        assert request.decision_reasons[0] == "no privileged action: tier normal"
        assert not any(" carries " in reason for reason in request.decision_reasons)
    else:
        assert f"{role} carries {deciding}" in request.decision_reasons


async def test_key_creation_in_a_custom_role_is_the_credential_category(
    leash: Leash, gcp_sandbox: Sandbox
) -> None:
    role = _emulator(gcp_sandbox).add_custom_role(f"projects/{PROJECT}", "keyMinter", [KEYS])

    request = await _ask(leash, role)

    assert "includes credential actions: tier escalation" in request.decision_reasons


async def test_an_organization_custom_role_is_resolved_and_tiered_too(
    leash: Leash, gcp_sandbox: Sandbox
) -> None:
    emulator = _emulator(gcp_sandbox)
    role = emulator.add_custom_role(emulator.organization, "leashHelper", [ACT_AS])

    request = await _ask(leash, role)

    assert request.tier is Tier.ESCALATION
    assert f"{role} carries {ACT_AS}" in request.decision_reasons


async def test_a_custom_role_that_does_not_exist_is_refused_and_nothing_is_stored(
    leash: Leash, gcp_sandbox: Sandbox
) -> None:
    missing = f"projects/{PROJECT}/roles/noSuchRole"

    with pytest.raises(InvalidInputError) as refused:
        await _ask(leash, missing)

    assert str(refused.value).startswith(
        f"{missing}: Google IAM does not show this role (unknown or unreadable)."
    )
    async with leash.context.transaction() as session:
        assert (await session.exec(select(AccessRequest))).all() == []
    assert ApiCall("iam", "roles.get", missing) in _emulator(gcp_sandbox).requests


@pytest.mark.parametrize(
    ("role", "deciding"),
    [
        ("roles/cloudbuild.builds.editor", "cloudbuild.builds.create"),
        ("roles/container.admin", "container.clusters.create"),
        ("roles/composer.admin", "composer.environments.create"),
    ],
)
async def test_code_execution_roles_are_escalation_by_what_they_carry(
    leash: Leash, role: str, deciding: str
) -> None:
    request = await _ask(leash, role)

    assert request.tier is Tier.ESCALATION
    assert any(
        reason.startswith(f"{role} carries ") and deciding in reason
        for reason in request.decision_reasons
    ), request.decision_reasons


@pytest.mark.parametrize(
    "role", ["roles/cloudbuild.builds.editor", "roles/container.admin", "roles/composer.admin"]
)
def test_the_emulated_permissions_alone_make_these_roles_escalation(role: str) -> None:
    # Under another name, so the role catalogue cannot decide: only what it carries does.
    carried = ResolvedItem("projects/p/roles/renamed", role, PREDEFINED_ROLES[role])

    categories = {m.entry.category for m in catalog.resolved_matches([carried])}

    assert ActionCategory.ESCALATION in categories


# The emulator's custom roles, through the real IAM admin client (not Leash's: Leash never
# creates roles, and its manifest need not allow it).


@pytest.fixture
def iam(world: World) -> Iterator[iam_admin_v1.IAMClient]:
    clients = GcpClients.connect(world.emulator)
    yield clients.iam
    clients.close()


def test_create_and_get_a_custom_role_by_project_id_or_number(
    world: World, iam: iam_admin_v1.IAMClient
) -> None:
    created = iam.create_role(
        request={
            "parent": f"projects/{PROJECT}",
            "role_id": "agentRunner",
            "role": {"title": "Agent runner", "included_permissions": [ACT_AS]},
        }
    )
    by_number = iam.get_role(request={"name": f"projects/{PROJECT_NUMBER}/roles/agentRunner"})

    assert created.name == f"projects/{PROJECT}/roles/agentRunner"
    assert (by_number.name, list(by_number.included_permissions)) == (created.name, [ACT_AS])
    assert created.etag
    assert ApiCall("iam", "projects.roles.create", f"projects/{PROJECT}") in world.emulator.requests
    assert ApiCall("iam", "roles.get", f"projects/{PROJECT_NUMBER}/roles/agentRunner") in (
        world.emulator.requests
    )
    operations = [(o.operation, o.permission) for o in world.emulator.operations]
    assert ("CreateRole", "iam.roles.create") in operations
    assert ("GetRole", "iam.roles.get") in operations


def test_the_emulator_refuses_what_iam_refuses_for_custom_roles(
    world: World, iam: iam_admin_v1.IAMClient
) -> None:
    world.emulator.add_custom_role(f"projects/{PROJECT}", "agentRunner", [ACT_AS])

    with pytest.raises(exceptions.NotFound):
        iam.get_role(request={"name": f"projects/{PROJECT}/roles/missing"})
    with pytest.raises(exceptions.AlreadyExists):
        iam.create_role(
            request={"parent": f"projects/{PROJECT}", "role_id": "agentRunner", "role": {}}
        )
    with pytest.raises(exceptions.InvalidArgument):
        iam.create_role(request={"parent": f"projects/{PROJECT}", "role_id": "bad id!"})
    with pytest.raises(exceptions.InvalidArgument):
        iam.create_role(
            request={
                "parent": f"projects/{PROJECT}",
                "role_id": "shouting",
                "role": {"included_permissions": ["IAM.serviceAccounts.actAs"]},
            }
        )
    with pytest.raises(exceptions.NotFound):
        iam.create_role(request={"parent": "projects/no-such-project", "role_id": "x"})


# How long Leash trusts what IAM said of a role.


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _reads(world: World, role: str) -> int:
    return world.emulator.requests.count(ApiCall("iam", "roles.get", role))


def test_an_edited_custom_role_is_read_again_after_its_lifetime(world: World) -> None:
    clock = Ticks()
    roles = RoleCatalog(world.clients(), clock=clock)
    role = world.emulator.add_custom_role(
        f"projects/{PROJECT}", "agentRunner", ["storage.objects.get"]
    )
    assert roles.permissions(role) == frozenset({"storage.objects.get"})

    world.emulator.edit_custom_role(role, ["storage.objects.get", ACT_AS])
    clock.now += CUSTOM_ROLE_LIFETIME - 1
    assert roles.permissions(role) == frozenset({"storage.objects.get"})  # still trusted
    clock.now += 2
    assert roles.permissions(role) == frozenset({"storage.objects.get", ACT_AS})
    assert _reads(world, role) == 2


def test_a_custom_role_created_after_a_miss_is_found_after_the_lifetime(world: World) -> None:
    clock = Ticks()
    roles = RoleCatalog(world.clients(), clock=clock)
    role = f"projects/{PROJECT}/roles/later"
    assert roles.permissions(role) is None

    world.emulator.add_custom_role(f"projects/{PROJECT}", "later", [KEYS])
    clock.now += CUSTOM_ROLE_LIFETIME + 1

    assert roles.permissions(role) == frozenset({KEYS})


def test_a_predefined_role_is_read_once(world: World) -> None:
    clock = Ticks()
    roles = RoleCatalog(world.clients(), clock=clock)

    roles.permissions("roles/storage.objectViewer")
    clock.now += 10 * CUSTOM_ROLE_LIFETIME
    roles.permissions("roles/storage.objectViewer")

    assert _reads(world, "roles/storage.objectViewer") == 1


# Deny policies take only the permissions Google supports in them.


UNSUPPORTED_IN_DENY = (
    "iam.denypolicies.create",
    "iam.denypolicies.update",
    "iam.denypolicies.delete",
    "serviceusage.apiKeys.create",
)


@pytest.mark.parametrize("permission", UNSUPPORTED_IN_DENY)
def test_what_deny_policies_cannot_hold_is_tiered_but_never_denied(permission: str) -> None:
    guarded = guardrail_actions(LeastPrivilegeRules(), provider="gcp")
    withheld = catalog.persistence_denies(["roles/storage.objectViewer"], provider="gcp")

    assert catalog_gcp.permission_category(permission) is not None
    assert permission not in guarded
    assert permission not in withheld


@pytest.mark.parametrize("permission", UNSUPPORTED_IN_DENY)
async def test_the_emulator_refuses_a_deny_policy_naming_an_unsupported_permission(
    world: World, permission: str
) -> None:
    agent = world.ref(TRIAGE)
    guarded = guardrail_actions(LeastPrivilegeRules(), provider="gcp")

    with pytest.raises(CloudError, match="not supported in deny policies"):
        await world.provider().guardrail(agent, [*guarded, permission], [])
    await world.provider().guardrail(agent, guarded, [])  # the supported list is taken
