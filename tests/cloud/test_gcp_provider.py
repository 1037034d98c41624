"""GcpProvider against the wire-level GCP emulator, through the real google-cloud clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from google.api_core import exceptions as api

from cloud.base import (
    CloudAccessDeniedError,
    CloudConflictError,
    CloudError,
    CloudLimitError,
    CloudNotFoundError,
    CloudProvider,
    CloudThrottledError,
    CloudUnavailableError,
    Exemption,
    GrantArtefact,
    UsageStatus,
)
from cloud.gcp import GcpProvider, bindings
from cloud.gcp.deny import deny_permission, short_hash
from cloud.gcp.errors import translate
from tests.cloud.gcp_emulator import emulator, world
from tests.cloud.gcp_world import ETL, FORECAST, RETIRED, TRIAGE, World, spec

__all__ = ["emulator", "world"]  # fixtures this module uses

STORAGE_ADMIN = "roles/storage.admin"
OBJECT_VIEWER = "roles/storage.objectViewer"
LOG_WRITER = "roles/logging.logWriter"
VERTEX_USER = "roles/aiplatform.user"
# What the tests tell the provider these roles hold (the emulator serves no roles.get).
ROLE_PERMISSIONS = {
    STORAGE_ADMIN: (
        "storage.buckets.create",
        "storage.buckets.delete",
        "storage.objects.create",
        "storage.objects.delete",
        "storage.objects.get",
        "storage.objects.list",
    ),
    OBJECT_VIEWER: ("storage.objects.get", "storage.objects.list"),
}


@pytest.fixture
def provider(world: World) -> GcpProvider:
    return world.provider(role_permissions=ROLE_PERMISSIONS)


def test_provider_honours_the_contract(provider: GcpProvider) -> None:
    assert isinstance(provider, CloudProvider)
    assert provider.name == "gcp"


# Discovery


async def test_discover_reads_every_project_of_the_organization(
    world: World, provider: GcpProvider
) -> None:
    result = await provider.discover()

    assert result.failures == {}
    found = {identity.ref.native_id: identity for identity in result.identities}
    triage = found[world.email(TRIAGE)]
    assert triage.ref == world.ref(TRIAGE)
    assert triage.tags["leash:owner"] == "alice@example.com"
    assert triage.tags["team"] == "support-bots"  # the project's label
    assert triage.attached_policies == (VERTEX_USER, LOG_WRITER, STORAGE_ADMIN)
    assert triage.created_at is None
    assert triage.created_by is None
    assert found[world.email(RETIRED)].tags["leash:disabled"] == "true"
    assert "leash:disabled" not in triage.tags
    assert found[world.email(ETL)].tags["leash:user-managed-keys"] == "1"
    assert "leash:user-managed-keys" not in triage.tags
    agents = [i for i in result.identities if i.trust_principals]
    assert len(agents) == 1
    agent = agents[0]
    assert agent.ref.native_id.endswith("@gcp-sa-aiplatform.iam.gserviceaccount.com")
    assert agent.trust_principals == ("aiplatform.googleapis.com",)
    assert agent.ref.account == world.ref(FORECAST).account
    assert agent.attached_policies == ("roles/aiplatform.serviceAgent",)


async def test_discover_under_a_folder_finds_only_its_projects(
    world: World, provider: GcpProvider
) -> None:
    everything = await provider.discover()
    inside = world.ref(TRIAGE).account  # the seeded project in a folder
    parent = await asyncio.to_thread(
        lambda: str(world.clients().projects().get_project(name=f"projects/{inside}").parent)
    )
    assert parent.startswith("folders/")

    result = await world.provider(folders=[parent]).discover()

    assert len({identity.ref.account for identity in everything.identities}) == 3
    assert {identity.ref.account for identity in result.identities} == {inside}


async def test_discover_reports_an_unreadable_project_and_goes_on(world: World) -> None:
    triage = world.ref(TRIAGE)

    result = await world.provider(projects=[triage.account, "no-such-project"]).discover()

    assert set(result.failures) == {"no-such-project"}
    assert "no-such-project" in result.failures["no-such-project"]
    assert triage.native_id in {identity.ref.native_id for identity in result.identities}


async def test_discover_lists_leash_grants_as_inline_policies(
    world: World, provider: GcpProvider
) -> None:
    triage = world.ref(TRIAGE)
    await provider.grant(triage, spec("g-inline1", OBJECT_VIEWER))

    result = await provider.discover()

    found = next(i for i in result.identities if i.ref.native_id == triage.native_id)
    assert found.inline_policies == ("leash-grant-g-inline1",)
    assert OBJECT_VIEWER not in found.attached_policies


# Grants


async def test_grant_binds_each_role_until_expiry(world: World, provider: GcpProvider) -> None:
    triage = world.ref(TRIAGE)
    grant = spec("g-first1", OBJECT_VIEWER, "roles/bigquery.dataViewer", hours=2)

    applied = await provider.grant(triage, grant)

    assert applied.artefact == "leash-grant-g-first1"
    assert applied.mechanism == "gcp-iam-condition-request-time"
    stamp = grant.expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    bindings = world.titled(triage, "leash-grant-g-first1")
    assert sorted(b["role"] for b in bindings) == [
        "roles/bigquery.dataViewer",
        OBJECT_VIEWER,
    ]
    for binding in bindings:
        assert binding["condition"]["expression"] == f'request.time < timestamp("{stamp}")'
    assert world.emulator.iam_policy(triage.account)["version"] == 3
    assert OBJECT_VIEWER in world.roles(triage, grant.expires_at - timedelta(seconds=1))
    assert OBJECT_VIEWER not in world.roles(triage, grant.expires_at + timedelta(seconds=1))
    assert world.emulator.sets_without_etag == 0


async def test_grant_twice_leaves_one_binding_per_role(world: World, provider: GcpProvider) -> None:
    triage = world.ref(TRIAGE)
    grant = spec("g-twice1", OBJECT_VIEWER)

    await provider.grant(triage, grant)
    await provider.grant(triage, grant)

    assert len(world.titled(triage, "leash-grant-g-twice1")) == 1
    assert await provider.grant_artefacts(triage) == (
        GrantArtefact(identity=triage, grant_id="g-twice1", artefact="leash-grant-g-twice1"),
    )


async def test_revoke_removes_only_that_grant(world: World, provider: GcpProvider) -> None:
    triage, etl = world.ref(TRIAGE), world.ref(ETL)
    other = world.add(triage.account, "other-agent-42")
    await provider.grant(triage, spec("g-keep01", OBJECT_VIEWER))
    await provider.grant(triage, spec("g-gone01", OBJECT_VIEWER, LOG_WRITER))
    await provider.grant(other, spec("g-other1", OBJECT_VIEWER))
    before = world.emulator.iam_policy(triage.account)["bindings"]

    assert await provider.revoke(triage, "g-gone01") is True
    assert await provider.revoke(triage, "g-gone01") is False
    assert await provider.revoke(etl, "g-never1") is False

    after = world.emulator.iam_policy(triage.account)["bindings"]
    gone = "leash-grant-g-gone01"
    assert after == [b for b in before if b.get("condition", {}).get("title") != gone]
    assert [a.grant_id for a in await provider.grant_artefacts(triage)] == ["g-keep01"]
    assert [a.grant_id for a in await provider.grant_artefacts(other)] == ["g-other1"]
    assert LOG_WRITER in world.roles(triage)  # its own unconditional binding is untouched
    assert world.emulator.sets_without_etag == 0


@pytest.mark.parametrize("conflicts", [0, 2], ids=["no-conflict", "two-lost-sets"])
async def test_concurrent_grants_on_one_project_all_land(
    world: World, provider: GcpProvider, conflicts: int
) -> None:
    triage = world.ref(TRIAGE)
    other = world.add(triage.account, "other-agent-42")
    world.emulator.conflict_next_sets(conflicts)

    await asyncio.gather(
        provider.grant(triage, spec("g-para01", OBJECT_VIEWER)),
        provider.grant(other, spec("g-para02", OBJECT_VIEWER)),
    )

    assert len(world.titled(triage, "leash-grant-g-para01")) == 1
    assert len(world.titled(other, "leash-grant-g-para02")) == 1
    assert world.emulator.sets_without_etag == 0


async def test_the_21st_binding_of_a_role_is_refused(world: World) -> None:
    triage = world.ref(TRIAGE)
    now = datetime.now(UTC)
    provider = world.provider(clock=lambda: now)
    for number in range(20):
        await provider.grant(triage, spec(f"g-many{number:02}", OBJECT_VIEWER, now=now))

    with pytest.raises(CloudLimitError, match="20 per role and member"):
        await provider.grant(triage, spec("g-many20", OBJECT_VIEWER, now=now))

    assert world.titled(triage, "leash-grant-g-many20") == []
    assert world.emulator.sets_without_etag == 0


async def test_expired_leash_bindings_are_pruned_to_make_room(world: World) -> None:
    triage = world.ref(TRIAGE)
    start = datetime.now(UTC)
    early = world.provider(clock=lambda: start)
    for number in range(20):
        await early.grant(triage, spec(f"g-old{number:02}", OBJECT_VIEWER, now=start))
    later = start + timedelta(hours=2)  # every earlier grant has expired

    await world.provider(clock=lambda: later).grant(
        triage, spec("g-new001", OBJECT_VIEWER, now=later)
    )

    titles = [b["condition"]["title"] for b in world.bindings(triage) if "condition" in b]
    assert titles == ["leash-grant-g-new001"]


async def test_deny_actions_become_a_deny_policy_that_revoke_deletes(
    world: World, provider: GcpProvider
) -> None:
    triage = world.ref(TRIAGE)
    grant = spec(
        "g-deny01",
        OBJECT_VIEWER,
        deny=(
            "iam.serviceAccountKeys.create",
            "iam:CreateAccessKey",  # another cloud's: skipped
            "resourcemanager.projects.delete",
        ),
    )

    await provider.grant(triage, grant)

    policy = world.deny_policy(triage.account, "leash-grant-g-deny01")
    assert policy is not None
    (rule,) = policy["rules"]
    assert rule["denyRule"]["deniedPrincipals"] == [
        f"principal://iam.googleapis.com/projects/-/serviceAccounts/{triage.native_id}"
    ]
    assert rule["denyRule"]["deniedPermissions"] == [
        "cloudresourcemanager.googleapis.com/projects.delete",
        "iam.googleapis.com/serviceAccountKeys.create",
    ]
    assert await provider.revoke(triage, "g-deny01") is True
    assert world.deny_policy(triage.account, "leash-grant-g-deny01") is None
    assert world.titled(triage, "leash-grant-g-deny01") == []


async def test_an_orphaned_grant_deny_policy_is_an_artefact(
    world: World, provider: GcpProvider
) -> None:
    triage = world.ref(TRIAGE)
    await provider.grant(triage, spec("g-orph01", OBJECT_VIEWER, deny=("iam.roles.create",)))
    await provider.grant(triage, spec("g-orph02", OBJECT_VIEWER))
    member = f"serviceAccount:{triage.native_id}"
    await asyncio.to_thread(  # someone removes the first grant's binding by hand
        bindings.modify,
        world.clients(),
        triage.account,
        lambda policy: bindings.without_member(
            policy.bindings, member, lambda b: b.leash_grant == "leash-grant-g-orph01"
        ),
    )

    artefacts = await provider.grant_artefacts(triage)

    assert [artefact.artefact for artefact in artefacts] == [
        "leash-grant-g-orph01",  # its deny policy is left
        "leash-grant-g-orph02",
    ]
    assert await provider.revoke(triage, "g-orph01") is True
    assert world.deny_policy(triage.account, "leash-grant-g-orph01") is None


@pytest.mark.parametrize(
    ("actions", "resources", "code"),
    [
        (("s3:GetObject",), (), "BadRole"),
        ((), (), "NoActions"),
        ((OBJECT_VIEWER,), ("projects/some-other-project",), "Unsupported"),
        ((OBJECT_VIEWER,), ("//storage.googleapis.com/projects/_/buckets/b",), "Unsupported"),
    ],
    ids=["aws-action", "no-roles", "other-project", "bucket"],
)
async def test_grant_refuses_what_gcp_cannot_hold(
    world: World,
    provider: GcpProvider,
    actions: tuple[str, ...],
    resources: tuple[str, ...],
    code: str,
) -> None:
    triage = world.ref(TRIAGE)
    before = world.emulator.iam_policy(triage.account)

    with pytest.raises(CloudError) as raised:
        await provider.grant(triage, spec("g-bad001", *actions, resources=resources))

    assert raised.value.code.startswith(code)
    assert world.emulator.iam_policy(triage.account) == before


@pytest.mark.parametrize(
    "resource",
    ["projects/{project}", "//cloudresourcemanager.googleapis.com/projects/{project}"],
    ids=["short", "full"],
)
async def test_grant_accepts_the_project_itself(
    world: World, provider: GcpProvider, resource: str
) -> None:
    triage = world.ref(TRIAGE)

    resources = (resource.format(project=triage.account),)

    await provider.grant(triage, spec("g-proj01", OBJECT_VIEWER, resources=resources))

    assert len(world.titled(triage, "leash-grant-g-proj01")) == 1


# Usage


async def test_usage_maps_recommendations_and_insights(world: World, provider: GcpProvider) -> None:
    triage = world.ref(TRIAGE)
    world.emulator.set_recommendation(
        triage.account, f"serviceAccount:{triage.native_id}", LOG_WRITER
    )
    await provider.grant(triage, spec("g-usage1", "roles/bigquery.dataViewer"))
    since = datetime.now(UTC) - timedelta(days=90)

    report = await provider.usage(triage, since)

    assert report.status is UsageStatus.COMPLETE
    assert report.granted == (VERTEX_USER, LOG_WRITER, STORAGE_ADMIN)  # Leash's grant left out
    assert set(report.used) == {"storage.objects.get", "storage.objects.list"}
    assert report.not_used == (
        LOG_WRITER,  # REMOVE_ROLE
        "storage.buckets.create",  # REPLACE_ROLE by objectViewer: neither carried nor used
        "storage.buckets.delete",
        "storage.objects.create",
        "storage.objects.delete",
    )
    assert report.unknown == (VERTEX_USER,)  # nothing speaks of it
    assert report.last_activity_at is None  # active accounts have no service-account insight


async def test_usage_of_a_dormant_account_finds_every_role_unused(
    world: World, provider: GcpProvider
) -> None:
    forecast = world.ref(FORECAST)

    report = await provider.usage(forecast, datetime.now(UTC) - timedelta(days=30))

    assert report.status is UsageStatus.COMPLETE
    assert report.not_used == (VERTEX_USER,)
    assert report.last_activity_at is not None
    assert report.last_activity_at < datetime.now(UTC) - timedelta(days=100)


async def test_usage_is_unknown_without_any_insight(world: World, provider: GcpProvider) -> None:
    triage = world.ref(TRIAGE)
    world.emulator.clear_recommendations()

    report = await provider.usage(triage, datetime.now(UTC) - timedelta(days=90))

    assert report.status is UsageStatus.UNKNOWN
    assert "no insight" in report.note
    assert report.not_used == ()


async def test_usage_reads_role_contents_from_iam_and_leaves_unreadable_roles_unknown(
    world: World,
) -> None:
    triage = world.ref(TRIAGE)
    member = f"serviceAccount:{triage.native_id}"
    # A custom role IAM cannot describe, recommended for replacement like storage.admin.
    custom = f"projects/{triage.account}/roles/triageTools"
    world.emulator.add_binding(triage.account, custom, member)
    world.emulator.set_recommendation(
        triage.account, member, custom, replacement_role="roles/logging.logWriter"
    )

    report = await world.provider().usage(triage, datetime.now(UTC) - timedelta(days=90))

    # storage.admin's contents came over the wire (IAM roles.get): what the smaller role
    # drops and nobody exercised is unused.
    assert "storage.buckets.delete" in report.not_used
    assert "storage.objects.get" in report.used
    assert STORAGE_ADMIN not in report.unknown
    assert custom in report.unknown
    assert "could not be read" in report.note


# Restriction


async def test_restrict_then_unrestrict_restores_the_exact_bindings(
    world: World, provider: GcpProvider
) -> None:
    triage = world.ref(TRIAGE)
    await provider.grant(triage, spec("g-rest01", OBJECT_VIEWER))
    original = world.emulator.iam_policy(triage.account)["bindings"]
    unused = [LOG_WRITER, VERTEX_USER, "storage.buckets.delete", "storage.objects.get"]

    plan = await provider.plan_restrict(triage, unused, keep=[VERTEX_USER, "storage.objects.get"])

    assert plan.deny == (LOG_WRITER, "storage.buckets.delete")
    assert plan.mechanism == "gcp-remove-bindings+gcp-deny-policy"
    assert json.loads(plan.document)["removeBindings"] == [LOG_WRITER]
    snapshot = await provider.restrict(triage, plan)
    assert LOG_WRITER not in world.roles(triage)
    assert OBJECT_VIEWER in world.roles(triage)  # the grant survives
    policy_id = f"leash-restrict-{short_hash(triage.native_id)}"
    restriction = world.deny_policy(triage.account, policy_id)
    assert restriction is not None
    assert restriction["rules"][0]["denyRule"]["deniedPermissions"] == [
        "storage.googleapis.com/buckets.delete"
    ]
    assert json.loads(json.dumps(snapshot)) == snapshot  # plain JSON, storable as is

    assert await provider.unrestrict(triage, snapshot) is True
    restored = world.emulator.iam_policy(triage.account)["bindings"]
    assert _canonical(restored) == _canonical(original)
    assert world.deny_policy(triage.account, policy_id) is None
    assert await provider.unrestrict(triage, snapshot) is False
    assert world.emulator.sets_without_etag == 0


def _canonical(bindings: list[dict[str, object]]) -> list[str]:
    return sorted(json.dumps(binding, sort_keys=True) for binding in bindings)


async def test_restrict_refuses_when_the_bindings_changed_since_the_plan(
    world: World, provider: GcpProvider
) -> None:
    triage = world.ref(TRIAGE)
    plan = await provider.plan_restrict(triage, [LOG_WRITER, "storage.buckets.delete"], keep=[])
    world.emulator.add_binding(
        triage.account, "roles/pubsub.viewer", f"serviceAccount:{triage.native_id}"
    )
    before = world.emulator.iam_policy(triage.account)["bindings"]

    with pytest.raises(CloudConflictError, match="changed since the preview"):
        await provider.restrict(triage, plan)

    assert world.emulator.iam_policy(triage.account)["bindings"] == before
    restriction = f"leash-restrict-{short_hash(triage.native_id)}"
    assert world.deny_policy(triage.account, restriction) is None


async def test_plan_refuses_when_nothing_is_left_to_restrict(
    world: World, provider: GcpProvider
) -> None:
    triage = world.ref(TRIAGE)

    with pytest.raises(CloudError) as raised:
        await provider.plan_restrict(
            triage, ["roles/owner", "storage.objects.get"], keep=["storage.objects.get"]
        )

    assert raised.value.code == "NothingToRestrict"


# Quarantine


async def test_quarantine_disables_and_release_enables(world: World, provider: GcpProvider) -> None:
    triage = world.ref(TRIAGE)
    at = datetime.now(UTC)

    snapshot = await provider.quarantine(triage, at=at, reason="inactive")

    assert world.emulator.service_account(triage.native_id)["disabled"] is True
    assert snapshot["was_enabled"] is True
    with pytest.raises(CloudConflictError):
        await provider.quarantine(triage, at=at, reason="again")
    assert await provider.release(triage, snapshot) is True
    assert world.emulator.service_account(triage.native_id)["disabled"] is False
    assert await provider.release(triage, snapshot) is False
    assert world.bindings(triage)  # nothing was deleted


async def test_quarantine_refuses_an_already_disabled_account(
    world: World, provider: GcpProvider
) -> None:
    with pytest.raises(CloudConflictError):
        await provider.quarantine(world.ref(RETIRED), at=datetime.now(UTC), reason="x")


async def test_quarantine_refuses_a_service_agent(world: World, provider: GcpProvider) -> None:
    result = await provider.discover()
    agent = next(i.ref for i in result.identities if i.trust_principals)

    with pytest.raises(CloudError) as raised:
        await provider.quarantine(agent, at=datetime.now(UTC), reason="x")

    assert raised.value.code == "ServiceAgent"


# Guardrail

GUARDED = ("iam.serviceAccountKeys.create", "iam.serviceAccounts.actAs", "iam:PassRole")


async def test_guardrail_denies_guarded_permissions_but_the_exempted(
    world: World, provider: GcpProvider
) -> None:
    triage = world.ref(TRIAGE)
    policy_id = f"leash-guardrail-{short_hash(triage.native_id)}"
    now = datetime.now(UTC)
    live = Exemption("iam.serviceAccounts.actAs", now + timedelta(hours=1), "g-ex0001")
    expired = Exemption("iam.serviceAccountKeys.create", now - timedelta(hours=1), "g-ex0002")

    preview = await provider.guardrail(triage, GUARDED, [live, expired], dry_run=True)

    assert preview.before is None
    assert preview.changed
    assert world.deny_policy(triage.account, policy_id) is None
    change = await provider.guardrail(triage, GUARDED, [live, expired])
    assert change.after == preview.after
    assert change.mechanism == "gcp-deny-policy"
    policy = world.deny_policy(triage.account, policy_id)
    assert policy is not None
    assert policy["rules"][0]["denyRule"]["deniedPermissions"] == [
        "iam.googleapis.com/serviceAccountKeys.create"
    ]
    again = await provider.guardrail(triage, GUARDED, [live, expired])
    assert not again.changed
    assert again.before == change.after

    closed = await provider.guardrail(triage, GUARDED, [])
    assert json.loads(closed.after)["rules"][0]["deniedPermissions"] == [
        "iam.googleapis.com/serviceAccountKeys.create",
        "iam.googleapis.com/serviceAccounts.actAs",
    ]
    lifted = await provider.guardrail(triage, ["iam:PassRole"], [])
    assert lifted.after == "null"
    assert lifted.changed
    assert world.deny_policy(triage.account, policy_id) is None
    nothing = await provider.guardrail(triage, ["iam:PassRole"], [])
    assert not nothing.changed


# Permissions and errors


def test_required_permissions_name_what_leash_calls(provider: GcpProvider) -> None:
    needed = set(provider.required_permissions())

    assert {
        "resourcemanager.projects.getIamPolicy",
        "resourcemanager.projects.setIamPolicy",
        "resourcemanager.folders.list",
        "iam.serviceAccounts.disable",
        "iam.serviceAccounts.enable",
        "iam.denypolicies.create",
        "iam.denypolicies.delete",
        "recommender.iamPolicyRecommendations.list",
        "recommender.iamServiceAccountInsights.list",
    } <= needed
    scoped = GcpProvider(projects=["p"], rest_endpoint="http://127.0.0.1:1")
    assert "resourcemanager.folders.list" not in scoped.required_permissions()


@pytest.mark.parametrize(
    ("error", "message", "kind"),
    [
        (api.PermissionDenied, "no", CloudAccessDeniedError),
        (api.NotFound, "gone", CloudNotFoundError),
        (api.Aborted, "etag", CloudConflictError),
        (api.Conflict, "409", CloudConflictError),
        (api.ResourceExhausted, "quota", CloudThrottledError),
        (api.TooManyRequests, "429", CloudThrottledError),
        (api.ServiceUnavailable, "down", CloudUnavailableError),
        (api.DeadlineExceeded, "slow", CloudUnavailableError),
        (api.FailedPrecondition, "exceeds the maximum of 100 bindings", CloudLimitError),
        (api.InvalidArgument, "bad field", CloudError),
        (ConnectionError, "refused", CloudUnavailableError),
    ],
    ids=[
        "permission-denied",
        "not-found",
        "aborted",
        "conflict",
        "resource-exhausted",
        "too-many-requests",
        "unavailable",
        "deadline",
        "limit",
        "invalid",
        "connection",
    ],
)
def test_errors_are_translated_at_the_edge(
    error: Callable[[str], Exception], message: str, kind: type[CloudError]
) -> None:
    translated = translate(error(message), operation="projects.get", target="project p")

    assert type(translated) is kind
    assert "projects.get" in str(translated)
    assert message in str(translated)


@pytest.mark.parametrize(
    ("permission", "spelled"),
    [
        ("iam.serviceAccountKeys.create", "iam.googleapis.com/serviceAccountKeys.create"),
        ("resourcemanager.projects.delete", "cloudresourcemanager.googleapis.com/projects.delete"),
        ("storage.googleapis.com/buckets.delete", "storage.googleapis.com/buckets.delete"),
    ],
    ids=["iam", "resourcemanager", "already-spelled"],
)
def test_deny_permissions_are_spelled_as_deny_rules_want(permission: str, spelled: str) -> None:
    assert deny_permission(permission) == spelled


async def test_unreachable_emulator_is_unavailable() -> None:
    provider = GcpProvider(
        projects=["p"],
        rest_endpoint="http://127.0.0.1:9",
        grpc_target="127.0.0.1:9",
        max_attempts=1,
    )

    result = await provider.discover()

    assert "p" in result.failures
