"""The provider contract, the same tests for every cloud: AWS on the sandbox, GCP and Azure on
their emulators.

Test bodies use only the `CloudProvider` protocol; what differs between clouds (the identity,
what to grant, how to read the cloud back) is the `world` the fixture hands them. Azure has no
deny a customer can write: its world has no deny actions, and where the contract says "denied"
it means, there, that nothing allows the action any more.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cloud.base import (
    CloudConflictError,
    CloudError,
    CloudProvider,
    Exemption,
    GrantSpec,
    UsageStatus,
)
from cloud.sandbox import Sandbox
from cloud.sandbox.azure import AzureEmulator
from cloud.sandbox.gcp import GcpEmulator
from tests.cloud.contract_world import AwsWorld, AzureWorld, ContractWorld, GcpWorld

WINDOW = timedelta(days=90)


@pytest.fixture(params=["aws", "gcp", "azure"])
def world(request: pytest.FixtureRequest) -> ContractWorld:
    """A freshly reset cloud and the world that acts and looks in it."""
    if request.param == "aws":
        sandbox: Sandbox = request.getfixturevalue("fresh_sandbox")
        return AwsWorld(sandbox)
    if request.param == "gcp":
        emulator: GcpEmulator = request.getfixturevalue("gcp_emulator")
        emulator.reset()
        return GcpWorld(emulator)
    azure: AzureEmulator = request.getfixturevalue("azure_emulator")
    azure.reset()
    return AzureWorld(azure)


def spec(world: ContractWorld, grant_id: str, *, hours: float = 1) -> GrantSpec:
    """Build a grant of the world's grantable actions, whole seconds from now."""
    expires_at = (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0)
    return GrantSpec(
        grant_id=grant_id,
        actions=world.grantable,
        resources=(),
        expires_at=expires_at,
        deny_actions=world.deny_actions,
    )


async def refused(world: ContractWorld, action: str) -> bool:
    """Say whether the cloud refuses `action` to the identity now.

    Where the cloud can deny (the world has deny actions) that takes an explicit deny; where it
    cannot (Azure), it means nothing the identity holds allows the action any more.
    """
    if world.deny_actions:
        return await world.denies(action)
    return not await world.allows(action)


def plain_json(snapshot: object) -> bool:
    """Say whether a snapshot survives a JSON round trip unchanged (Leash stores it so)."""
    return bool(json.loads(json.dumps(snapshot)) == snapshot)


async def test_discover_finds_the_agent_and_no_failures(world: ContractWorld) -> None:
    """Discovery lists the world's identity as its cloud names it, and every scope is read."""
    provider = world.provider
    assert isinstance(provider, CloudProvider)

    result = await provider.discover()

    assert result.failures == {}
    found = {identity.ref.native_id: identity for identity in result.identities}
    agent = found[world.identity.native_id]
    assert agent.ref == world.identity
    assert agent.ref.provider == provider.name
    assert sorted(agent.attached_policies) == sorted(world.attached)
    assert not any(name.startswith("leash-") for name in agent.inline_policies)


async def test_grant_is_held_by_the_cloud_until_it_expires_and_applies_once(
    world: ContractWorld,
) -> None:
    """A grant is one `leash-grant-<id>` artefact the cloud honours until, and not after, expiry."""
    provider, identity = world.provider, world.identity
    grant = spec(world, "g-contract1")
    assert not any([await world.allows(action) for action in world.grantable])

    applied = await provider.grant(identity, grant)

    assert applied.artefact == "leash-grant-g-contract1"
    assert applied.mechanism
    assert await world.holds_grant("g-contract1")
    before, after = grant.expires_at - timedelta(seconds=1), grant.expires_at + timedelta(seconds=1)
    for action in world.grantable:
        assert await world.allows(action, before)
        assert not await world.allows(action, after)
    for action in world.deny_actions:
        assert await world.denies(action)
    listed = await provider.grant_artefacts(identity)
    assert [(a.identity, a.grant_id, a.artefact) for a in listed] == [
        (identity, "g-contract1", "leash-grant-g-contract1")
    ]

    again = await provider.grant(identity, grant)

    assert again == applied
    assert await world.grant_copies("g-contract1") == 1
    assert [a.grant_id for a in await provider.grant_artefacts(identity)] == ["g-contract1"]


async def test_revoke_removes_the_grant_and_is_idempotent(world: ContractWorld) -> None:
    """Revoke takes the artefact away (True); revoking what is gone is success (False)."""
    provider, identity = world.provider, world.identity
    await provider.grant(identity, spec(world, "g-contract2"))

    assert await provider.revoke(identity, "g-contract2") is True

    assert not await world.holds_grant("g-contract2")
    assert not any([await world.allows(action) for action in world.grantable])
    assert not any([await world.denies(action) for action in world.deny_actions])
    assert await provider.grant_artefacts(identity) == ()
    assert await provider.revoke(identity, "g-contract2") is False
    assert await provider.revoke(identity, "g-never01") is False


async def test_usage_reports_what_the_identity_never_used(world: ContractWorld) -> None:
    """Usage compares what is granted with what the cloud saw used, and names the unused."""
    await world.set_usage()
    since = datetime.now(UTC) - WINDOW

    report = await world.provider.usage(world.identity, since)

    assert report.identity == world.identity
    assert report.status in (UsageStatus.COMPLETE, UsageStatus.SERVICE_LEVEL)
    assert report.since == since
    assert report.granted
    assert world.unused_grant in report.granted
    assert world.unused in report.not_used
    assert world.unused not in report.used
    assert world.unused not in report.unknown


async def test_restrict_takes_the_unused_away_and_unrestrict_restores_exactly(
    world: ContractWorld,
) -> None:
    """A restriction planned from usage takes away only the unused; its undo restores all."""
    provider, identity = world.provider, world.identity
    await world.set_usage()
    report = await provider.usage(identity, datetime.now(UTC) - WINDOW)
    keep = [*report.used, *report.unknown]
    original = await world.state()
    assert await world.allows(world.unused_grant)

    plan = await provider.plan_restrict(identity, [world.unused], keep)

    assert plan.identity == identity
    assert plan.deny == (world.restricted,)
    assert plan.mechanism
    assert plan.fingerprint
    assert await world.state() == original  # planning writes nothing

    snapshot = await provider.restrict(identity, plan)

    assert plain_json(snapshot)
    assert await world.state() != original
    assert not await world.allows(world.unused_grant)
    assert await world.allows(world.kept)

    assert await provider.unrestrict(identity, snapshot) is True

    assert await world.state() == original
    assert await world.allows(world.unused_grant)
    assert await provider.unrestrict(identity, snapshot) is False
    assert await world.state() == original


def without_session_revocation(state: Any) -> Any:
    """A cloud's state without the old-sessions deny a release deliberately leaves."""
    if isinstance(state, dict) and isinstance(state.get("inline"), dict):
        inline = {k: v for k, v in state["inline"].items() if k != "leash-revoked-sessions"}
        return state | {"inline": inline}
    return state


async def test_quarantine_stops_everything_and_release_restores_exactly(
    world: ContractWorld,
) -> None:
    """Quarantine leaves the identity able to do nothing, once; release gives back all, once."""
    provider, identity = world.provider, world.identity
    original = await world.state()
    assert not await world.is_quarantined()
    assert await world.allows(world.kept)

    snapshot = await provider.quarantine(identity, at=datetime.now(UTC), reason="contract test")

    assert plain_json(snapshot)
    assert await world.state() != original
    assert await world.is_quarantined()
    assert not await world.allows(world.kept)
    with pytest.raises(CloudConflictError):
        await provider.quarantine(identity, at=datetime.now(UTC), reason="again")
    assert await world.is_quarantined()

    assert await provider.release(identity, snapshot) is True

    assert not await world.is_quarantined()
    assert await world.allows(world.kept)
    # Exactly as before, but for a lasting deny of sessions issued before the quarantine
    # where the cloud has sessions (AWS: `leash-revoked-sessions`).
    assert without_session_revocation(await world.state()) == original
    assert await provider.release(identity, snapshot) is False
    assert without_session_revocation(await world.state()) == original


async def test_guardrail_denies_the_guarded_except_a_live_exemption(world: ContractWorld) -> None:
    """The guardrail refuses every guarded action but what a live exemption keeps open."""
    provider, identity, guarded = world.provider, world.identity, world.guarded
    original = await world.state()
    now = datetime.now(UTC)
    opened, *closed = guarded
    live = Exemption(opened, now + timedelta(hours=1), "g-contract3")

    preview = await provider.guardrail(identity, guarded, (), dry_run=True)

    assert preview.changed
    assert preview.identity == identity
    assert await world.state() == original  # a dry run writes nothing
    assert not any([await refused(world, action) for action in guarded])

    exempted = await provider.guardrail(identity, guarded, [live])

    assert exempted.changed
    assert exempted.mechanism
    assert await world.state() != original
    assert not await refused(world, opened)
    assert all([await refused(world, action) for action in closed])

    change = await provider.guardrail(identity, guarded, exemptions=())

    assert change.changed
    assert change.before == exempted.after
    assert change.after == preview.after
    assert change.mechanism
    assert all([await refused(world, action) for action in guarded])
    assert not (await provider.guardrail(identity, guarded, ())).changed

    reopened = await provider.guardrail(identity, guarded, [live])

    if world.deny_actions:  # a deny is rewritten: an exemption granted later opens again
        assert reopened.changed
        assert reopened.before == change.after
        assert reopened.after == exempted.after
        assert not await world.denies(opened)
        assert all([await world.denies(action) for action in closed])
    else:  # what was taken away stays away: only a new grant gives it back
        assert not reopened.changed
        assert all([await refused(world, action) for action in guarded])

    expired = Exemption(opened, now - timedelta(seconds=1), "g-contract3")
    lapsed = await provider.guardrail(identity, guarded, [expired])

    assert lapsed.after == change.after  # an expired exemption opens nothing
    assert all([await refused(world, action) for action in guarded])


@pytest.mark.parametrize(
    ("actions", "expires_in"),
    [
        pytest.param((), timedelta(hours=1), id="no-actions"),
        pytest.param(None, None, id="naive-expiry"),
        pytest.param(None, timedelta(hours=-1), id="past-expiry"),
    ],
)
async def test_a_grant_the_cloud_cannot_hold_is_refused(
    world: ContractWorld, actions: tuple[str, ...] | None, expires_in: timedelta | None
) -> None:
    """A grant of nothing, or with a naive or past expiry, is refused and writes nothing."""
    original = await world.state()
    if expires_in is None:
        expires_at = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None)
    else:
        expires_at = datetime.now(UTC) + expires_in
    grant = GrantSpec(
        grant_id="g-refused1",
        actions=world.grantable if actions is None else actions,
        resources=(),
        expires_at=expires_at,
    )

    with pytest.raises(CloudError):
        await world.provider.grant(world.identity, grant)

    assert not await world.holds_grant("g-refused1")
    assert await world.state() == original
    assert await world.provider.grant_artefacts(world.identity) == ()
