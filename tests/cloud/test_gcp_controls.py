"""Google Cloud controls that hold (issue 17): what Leash writes, read back and evaluated.

The allow and deny policies are read back from the emulator and evaluated here by a small
evaluator of Google's documented logic, written independently of Leash's code: a permission
is denied when a deny rule of a deny policy on the project names the principal (and no
exception principal does) and a denied permission matches it that no exception permission
matches; otherwise it is allowed when a binding of the member to a role carrying it holds,
its CEL condition evaluated with cel-python at the request time. Role contents are those the
emulator serves (Google's lists), not Leash's catalogue.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import celpy
import pytest
from celpy import celtypes

from bot.domain import catalog
from bot.domain.findings import guardrail_actions
from bot.domain.policy import tier_for
from bot.domain.rules import LeastPrivilegeRules
from bot.domain.states import Tier
from cloud.base import Exemption, GrantSpec, IdentityRef
from cloud.gcp import GcpProvider
from cloud.gcp.deny import short_hash
from cloud.sandbox.gcp.roles import PREDEFINED_ROLES
from tests.cloud.gcp_emulator import emulator, world
from tests.cloud.gcp_world import TRIAGE, World, spec

__all__ = ["emulator", "world"]  # fixtures this module uses

TOKEN_CREATOR = "roles/iam.serviceAccountTokenCreator"
OBJECT_VIEWER = "roles/storage.objectViewer"
GET_ACCESS_TOKEN = "iam.serviceAccounts.getAccessToken"
# A role the evaluator knows that carries the self-description permissions, standing in for
# the broad roles agents are often given (Google's roles/iam.serviceAccountAdmin has them all).
SELF_EDITOR = "roles/iam.serviceAccountAdmin"
ROLES: dict[str, tuple[str, ...]] = {
    **PREDEFINED_ROLES,
    SELF_EDITOR: (
        "iam.serviceAccounts.get",
        "iam.serviceAccounts.update",
        "iam.serviceAccounts.disable",
        "iam.serviceAccounts.enable",
        "iam.serviceAccounts.setIamPolicy",
    ),
}


# An evaluator of Google's documented IAM logic over what the emulator holds.


def _deny_spelling(permission: str) -> str:
    service, _, rest = permission.partition(".")
    domain = "cloudresourcemanager" if service == "resourcemanager" else service
    return f"{domain}.googleapis.com/{rest}"


def _matches(pattern: str, permission: str) -> bool:
    if pattern in ("*", permission):
        return True
    return pattern.endswith(("/*", ".*")) and permission.startswith(pattern[:-1])


def _holds(expression: str, at: datetime) -> bool:
    env = celpy.Environment()
    program = env.program(env.compile(expression))
    request = celtypes.MapType({celtypes.StringType("time"): celtypes.TimestampType(at)})
    return bool(program.evaluate({"request": request}))


def denied_by(world: World, identity: IdentityRef, permission: str) -> list[str]:
    """Return the ids of the project's deny policies that deny the permission to the account."""
    principal = f"principal://iam.googleapis.com/projects/-/serviceAccounts/{identity.native_id}"
    wanted = _deny_spelling(permission)
    found = []
    for policy in world.emulator.deny_policies(identity.account):
        for rule in policy.get("rules", []):
            body = rule["denyRule"]
            if principal not in body.get("deniedPrincipals", []):
                continue
            if principal in body.get("exceptionPrincipals", []):
                continue
            if not any(_matches(p, wanted) for p in body.get("deniedPermissions", [])):
                continue
            if any(_matches(p, wanted) for p in body.get("exceptionPermissions", [])):
                continue
            # Deny conditions test resource tags only; an unknown tag is taken as denying.
            found.append(policy["name"].rsplit("/", 1)[-1])
    return found


def allowed_by_bindings(world: World, identity: IdentityRef, permission: str, at: datetime) -> bool:
    """Say whether a binding of the account to a role carrying the permission holds at `at`."""
    member = f"serviceAccount:{identity.native_id}"
    for binding in world.emulator.iam_policy(identity.account).get("bindings", []):
        if member not in binding["members"] or permission not in ROLES.get(binding["role"], ()):
            continue
        condition = binding.get("condition")
        if condition is None or _holds(condition["expression"], at):
            return True
    return False


def can(world: World, identity: IdentityRef, permission: str, at: datetime) -> bool:
    """Deny first, then allow: may the account use the permission at `at`?"""
    if denied_by(world, identity, permission):
        return False
    return allowed_by_bindings(world, identity, permission, at)


def _exemptions(
    actions: tuple[str, ...], grants: dict[str, tuple[str, datetime]]
) -> list[Exemption]:
    """The guardrail exemptions the domain gives live grants: each guarded action approved."""
    return [
        Exemption(action, expires_at, grant_id)
        for grant_id, (role, expires_at) in grants.items()
        for action in actions
        if catalog.allows([role], action)
    ]


def _approved(grant_id: str, role: str, *, hours: float, now: datetime) -> GrantSpec:
    """Build a grant of one role the way the domain does: withholding what the role lacks."""
    deny = catalog.persistence_denies([role], provider="gcp")
    return spec(grant_id, role, hours=hours, deny=deny, now=now)


@pytest.fixture
def provider(world: World) -> GcpProvider:
    return world.provider()


GUARDRAIL = guardrail_actions(LeastPrivilegeRules(), provider="gcp")


# Finding 1 and 5: tiers of the roles that must not be normal.


@pytest.mark.parametrize(
    "role",
    [
        "roles/cloudbuild.builds.editor",
        "roles/container.admin",
        "roles/composer.admin",
        "roles/composer.environmentAndStorageObjectAdmin",
        "roles/compute.instanceAdmin",
        "roles/iam.denyAdmin",
        "roles/orgpolicy.policyAdmin",
        "roles/storage.hmacKeyAdmin",
        "roles/serviceusage.apiKeysAdmin",
    ],
)
def test_code_execution_key_deny_and_org_policy_admins_are_escalation(role: str) -> None:
    tier, reasons = tier_for([role])

    assert tier is Tier.ESCALATION, reasons


@pytest.mark.parametrize(
    "role",
    [
        "projects/leash-demo-agents/roles/agentRunner",
        "organizations/123456789012/roles/leashHelper",
    ],
    ids=["project-custom-role", "organization-custom-role"],
)
def test_a_custom_role_is_escalation_until_its_permissions_are_resolved(role: str) -> None:
    tier, _ = tier_for([role])
    (match,) = catalog.matches([role])

    assert tier is Tier.ESCALATION
    assert match.entry.source == (
        "custom role: its permissions are not resolved, so it is treated as escalation"
    )


def test_a_plain_predefined_role_stays_normal() -> None:
    assert tier_for([OBJECT_VIEWER])[0] is Tier.NORMAL


@pytest.mark.parametrize(
    "permission",
    [
        "storage.hmacKeys.create",
        # Not iam.denypolicies.* nor serviceusage.apiKeys.create: deny policies cannot hold
        # them (tests/cloud/test_gcp_tiers.py); roles carrying them tier as escalation.
        "apikeys.keys.create",
        "orgpolicy.policy.set",
        "iam.serviceAccounts.update",
        "iam.serviceAccounts.disable",
        "iam.serviceAccounts.enable",
    ],
)
async def test_the_guardrail_read_back_denies_each_catalogue_gap(
    world: World, provider: GcpProvider, permission: str
) -> None:
    agent = world.ref(TRIAGE)
    await provider.guardrail(agent, GUARDRAIL, [])

    assert f"leash-guardrail-{_hash(agent)}" in denied_by(world, agent, permission)


def _hash(identity: IdentityRef) -> str:
    return short_hash(identity.native_id)


async def test_hmac_keys_are_withheld_during_every_grant_unless_approved(
    world: World, provider: GcpProvider
) -> None:
    agent = world.ref(TRIAGE)
    viewer = catalog.persistence_denies([OBJECT_VIEWER], provider="gcp")
    hmac_admin = catalog.persistence_denies(["roles/storage.hmacKeyAdmin"], provider="gcp")

    await provider.grant(agent, spec("g-viewer01", OBJECT_VIEWER, deny=viewer))

    assert "storage.hmacKeys.create" in viewer
    assert "storage.hmacKeys.create" not in hmac_admin
    assert "leash-grant-g-viewer01" in denied_by(world, agent, "storage.hmacKeys.create")


# Finding 2: the agent cannot rewrite its own description (where `leash:owner` lives).


async def test_the_agent_cannot_update_its_own_service_account(
    world: World, provider: GcpProvider
) -> None:
    agent = world.ref(TRIAGE)
    now = datetime.now(UTC)
    # Even holding a role that carries the permission, the guardrail's deny wins.
    world.emulator.add_binding(agent.account, SELF_EDITOR, f"serviceAccount:{agent.native_id}")
    assert can(world, agent, "iam.serviceAccounts.update", now)  # before the guardrail

    await provider.guardrail(agent, GUARDRAIL, [])

    for permission in (
        "iam.serviceAccounts.update",  # UpdateServiceAccount and PatchServiceAccount
        "iam.serviceAccounts.disable",
        "iam.serviceAccounts.enable",
    ):
        assert not can(world, agent, permission, now), permission
    guardrail = world.deny_policy(agent.account, f"leash-guardrail-{_hash(agent)}")
    assert guardrail is not None
    (rule,) = guardrail["rules"]
    # Scoped to the agent itself: it names only that principal, on the agent's own project.
    assert rule["denyRule"]["deniedPrincipals"] == [
        f"principal://iam.googleapis.com/projects/-/serviceAccounts/{agent.native_id}"
    ]
    other = world.ref("forecast-gcp-agent")
    assert not denied_by(world, other, "iam.serviceAccounts.update")


# Finding 6: grants never cancel each other.


@pytest.mark.parametrize("token_first", [False, True], ids=["viewer-first", "token-first"])
async def test_two_live_grants_leave_the_approved_token_grant_working(
    world: World, provider: GcpProvider, token_first: bool
) -> None:
    agent = world.ref(TRIAGE)
    now = datetime.now(UTC).replace(microsecond=0)
    viewer = _approved("g-viewer02", OBJECT_VIEWER, hours=4, now=now)
    token = _approved("g-token02", TOKEN_CREATOR, hours=1, now=now)
    live = {"g-token02": (TOKEN_CREATOR, token.expires_at)}
    await provider.guardrail(agent, GUARDRAIL, [])
    for grant in (token, viewer) if token_first else (viewer, token):
        await provider.grant(agent, grant)
    # The domain opens the guardrail for the approved grant, as it does on approval.
    await provider.guardrail(agent, GUARDRAIL, _exemptions(GUARDRAIL, live))

    during = now + timedelta(minutes=30)
    assert GET_ACCESS_TOKEN in viewer.deny_actions  # the viewer grant withholds it...
    assert denied_by(world, agent, GET_ACCESS_TOKEN) == []  # ...but not from the token grant
    assert can(world, agent, GET_ACCESS_TOKEN, during)
    assert can(world, agent, "storage.objects.get", during)
    # Nothing else opened: keys stay denied by both the viewer's deny and the guardrail.
    assert set(denied_by(world, agent, "iam.serviceAccountKeys.create")) >= {
        "leash-grant-g-viewer02",
        f"leash-guardrail-{_hash(agent)}",
    }

    after = token.expires_at + timedelta(seconds=1)
    assert not can(world, agent, GET_ACCESS_TOKEN, after)  # the binding's own expiry
    assert can(world, agent, "storage.objects.get", after)

    await provider.revoke(agent, "g-token02")
    await provider.guardrail(agent, GUARDRAIL, [])
    assert set(denied_by(world, agent, GET_ACCESS_TOKEN)) == {
        "leash-grant-g-viewer02",
        f"leash-guardrail-{_hash(agent)}",
    }
    assert not can(world, agent, GET_ACCESS_TOKEN, during)


async def test_an_expired_grant_no_longer_opens_another_grants_deny(
    world: World, provider: GcpProvider
) -> None:
    agent = world.ref(TRIAGE)
    now = datetime.now(UTC).replace(microsecond=0)
    token = spec("g-token03", TOKEN_CREATOR, hours=1, now=now)
    await provider.grant(agent, token)
    later = token.expires_at + timedelta(minutes=5)
    viewer = _approved("g-viewer03", OBJECT_VIEWER, hours=2, now=later)

    await world.provider(clock=lambda: later).grant(agent, viewer)

    assert denied_by(world, agent, GET_ACCESS_TOKEN) == ["leash-grant-g-viewer03"]
