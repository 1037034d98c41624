"""Deny policies within Google's limits: Leash's names fit; the emulator refuses as Google does.

Limits from Google's google.iam.v2 Policy reference and the deny-policy overview: a display
name of at most 63 characters; a policy id of 3 to 63 lower case letters, digits, '-' and '.'
starting with a letter; at most 500 deny policies and 500 deny rules per attachment point.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.api_core import exceptions as api
from google.cloud import iam_v2

from cloud.base import CloudError, CloudLimitError
from cloud.gcp import GcpProvider, deny
from cloud.sandbox.gcp import GcpEmulator
from cloud.sandbox.gcp.seed import AGENTS_PROJECT
from tests.cloud.gcp_emulator import emulator, world
from tests.cloud.gcp_fixtures import GcpClients, deny_parent, finished
from tests.cloud.gcp_world import World, spec

__all__ = ["emulator", "world"]  # fixtures this module uses

LONGEST_ACCOUNT = "support-triage-gcp-agent-00001"  # 30 characters, Google's maximum
DENIED = "storage.googleapis.com/buckets.delete"


@pytest.fixture
def provider(world: World) -> GcpProvider:
    return world.provider()


@pytest.fixture
def sdk(emulator: GcpEmulator) -> Iterator[GcpClients]:
    clients = GcpClients.connect(emulator)
    yield clients
    clients.close()


def _rule(email: str) -> iam_v2.PolicyRule:
    return iam_v2.PolicyRule(
        deny_rule=iam_v2.DenyRule(
            denied_principals=[deny.principal_of(email)], denied_permissions=[DENIED]
        )
    )


def _create(sdk: GcpClients, policy_id: str, display_name: str, email: str) -> None:
    policy = iam_v2.Policy(display_name=display_name, rules=[_rule(email)])
    finished(
        sdk.deny.create_policy(
            parent=deny_parent(AGENTS_PROJECT), policy=policy, policy_id=policy_id
        )
    )


def _fill(sdk: GcpClients, email: str) -> None:
    """Write 500 deny rules (two policies of 250) on the agents' project."""
    rules = [_rule(email) for _ in range(250)]
    for policy_id in ("bulk-one", "bulk-two"):
        finished(
            sdk.deny.create_policy(
                parent=deny_parent(AGENTS_PROJECT),
                policy=iam_v2.Policy(display_name=policy_id, rules=rules),
                policy_id=policy_id,
            )
        )


async def test_every_deny_policy_leash_writes_has_a_display_name_google_accepts(
    world: World, provider: GcpProvider
) -> None:
    agent = world.add(AGENTS_PROJECT, LONGEST_ACCOUNT)
    long_grant = "g-" + "7" * 40

    await provider.guardrail(agent, ["iam.serviceAccountKeys.create"], [])
    plan = await provider.plan_restrict(agent, ["storage.buckets.delete"], keep=[])
    await provider.restrict(agent, plan)
    await provider.grant(
        agent,
        spec(long_grant, "roles/storage.objectViewer", deny=("iam.serviceAccountKeys.create",)),
    )

    written = world.emulator.deny_policies(AGENTS_PROJECT)
    names = {p["name"].rsplit("/", 1)[-1]: p["displayName"] for p in written}
    assert set(names) == {
        f"leash-guardrail-{deny.short_hash(agent.native_id)}",
        f"leash-restrict-{deny.short_hash(agent.native_id)}",
        f"leash-grant-{long_grant}",
    }
    assert all(len(name) <= 63 for name in names.values()), names
    # Still recognisable: what it is and whose it is.
    assert names[f"leash-guardrail-{deny.short_hash(agent.native_id)}"] == (
        f"Leash guardrail: {LONGEST_ACCOUNT}"
    )
    assert names[f"leash-restrict-{deny.short_hash(agent.native_id)}"] == (
        f"Leash restriction: {LONGEST_ACCOUNT}"
    )
    assert names[f"leash-grant-{long_grant}"].startswith("Leash grant, no lasting keys: g-777")


def test_a_subject_too_long_is_cut_the_same_way_every_time() -> None:
    first = deny.display_name("Leash guardrail", "a" * 80 + "x")
    second = deny.display_name("Leash guardrail", "a" * 80 + "y")

    assert len(first) == len(second) == 63
    assert first == deny.display_name("Leash guardrail", "a" * 80 + "x")
    assert first != second
    assert deny.display_name("Leash guardrail", "short-agent") == "Leash guardrail: short-agent"


@pytest.mark.parametrize(("length", "accepted"), [(63, True), (64, False)], ids=["63", "64"])
def test_the_emulator_refuses_a_display_name_over_63_like_google(
    world: World, sdk: GcpClients, length: int, accepted: bool
) -> None:
    email = world.email("support-triage-gcp-agent")
    if accepted:
        _create(sdk, "leash-name-probe", "n" * length, email)
        assert len(world.deny_policy(AGENTS_PROJECT, "leash-name-probe") or {}) > 0
        return
    with pytest.raises(api.BadRequest) as refused:
        _create(sdk, "leash-name-probe", "n" * length, email)
    assert "63 characters" in refused.value.message
    assert refused.value.details, "Google answers with a google.rpc.BadRequest detail"
    assert world.deny_policy(AGENTS_PROJECT, "leash-name-probe") is None


def test_the_emulator_refuses_a_longer_display_name_on_update(
    world: World, sdk: GcpClients
) -> None:
    email = world.email("support-triage-gcp-agent")
    _create(sdk, "leash-name-probe", "short", email)
    name = f"{deny_parent(AGENTS_PROJECT)}/leash-name-probe"
    current = sdk.deny.get_policy(name=name)
    current.display_name = "n" * 64

    with pytest.raises(api.BadRequest):
        finished(sdk.deny.update_policy(request={"policy": current}))
    assert (world.deny_policy(AGENTS_PROJECT, "leash-name-probe") or {})["displayName"] == "short"


@pytest.mark.parametrize(
    "policy_id",
    ["ab", "9-starts-with-a-digit", "Upper-case", "x" * 64],
    ids=["two-characters", "leading-digit", "upper-case", "64-characters"],
)
def test_the_emulator_refuses_policy_ids_google_refuses(
    world: World, sdk: GcpClients, policy_id: str
) -> None:
    with pytest.raises(api.BadRequest):
        _create(sdk, policy_id, "probe", world.email("support-triage-gcp-agent"))


def test_the_emulator_refuses_the_501st_rule_of_a_project(world: World, sdk: GcpClients) -> None:
    email = world.email("support-triage-gcp-agent")
    _fill(sdk, email)
    seeded = sum(len(p.get("rules", [])) for p in world.emulator.deny_policies(AGENTS_PROJECT))
    assert seeded >= 500

    with pytest.raises(api.BadRequest) as refused:
        _create(sdk, "one-too-many", "probe", email)
    assert "500" in refused.value.message


async def test_leash_reports_the_project_limit_as_a_limit_error(
    world: World, sdk: GcpClients, provider: GcpProvider
) -> None:
    email = world.email("support-triage-gcp-agent")
    _fill(sdk, email)

    with pytest.raises(CloudLimitError) as refused:
        await provider.guardrail(world.ref("support-triage-gcp-agent"), ["iam.roles.create"], [])
    assert "500 deny policies" in str(refused.value)


def test_leash_refuses_a_display_name_google_would_refuse_before_calling(world: World) -> None:
    calls = len(world.emulator.requests)
    with pytest.raises(CloudError) as refused:
        deny.put(
            world.clients(),
            AGENTS_PROJECT,
            "leash-name-probe",
            display_name="n" * 64,
            rules=[deny.DenyRule((deny.principal_of("a@b.c"),), (DENIED,))],
        )
    assert refused.value.code == "BadDisplayName"
    assert "63" in str(refused.value)
    assert len(world.emulator.requests) == calls
