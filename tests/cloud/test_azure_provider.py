"""AzureProvider against the https Azure emulator, through the real Azure SDK clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from cloud.azure import AzureProvider
from cloud.azure.clients import AzureClients
from cloud.azure.discovery import graph_tags, trusted_services
from cloud.azure.errors import retry_after, translate
from cloud.azure.roles import RoleDefinition, intersects
from cloud.base import (
    CloudAccessDeniedError,
    CloudConfigurationError,
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
from cloud.sandbox.azure import AzureEmulator
from tests.cloud.azure_world import (
    AGENTS,
    DATA,
    ETL,
    FORECAST,
    SUMMARIZER,
    SUPPORT_GROUP,
    TRIAGE,
    World,
    spec,
)

PIM = "azure-pim-schedule"
READER_GUID = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
PLAIN = "azure-role-assignment-leash-revoked"
BLOB_READER = "Storage Blob Data Reader"
AGENTS_SCOPE = f"/subscriptions/{AGENTS}"
DATA_SCOPE = f"/subscriptions/{DATA}"
FORECAST_GROUP = f"{AGENTS_SCOPE}/resourceGroups/rg-forecast"


@pytest.fixture(scope="module")
def emulator() -> Iterator[AzureEmulator]:
    running = AzureEmulator.start(seed=True)
    yield running
    running.stop()


@pytest.fixture
def world(emulator: AzureEmulator) -> World:
    emulator.reset()
    return World(emulator)


@pytest.fixture
def provider(world: World) -> AzureProvider:
    return world.provider()


def test_provider_honours_the_contract(provider: AzureProvider) -> None:
    assert isinstance(provider, CloudProvider)
    assert provider.name == "azure"


# Discovery


async def test_discover_finds_service_principals_and_managed_identities(
    world: World, provider: AzureProvider
) -> None:
    result = await provider.discover()

    assert result.failures == {}
    found = {(i.ref.account, i.ref.name): i for i in result.identities}
    triage = found[(AGENTS, TRIAGE)]
    assert triage.ref == world.ref(TRIAGE)
    assert triage.tags["leash:owner"] == "alice@example.com"
    assert triage.tags["leash:agent"] == "true"
    assert triage.tags["team"] == "support-bots"
    assert triage.attached_policies == (f"Contributor @ {SUPPORT_GROUP}",)
    assert triage.inline_policies == ()
    summarizer = found[(AGENTS, SUMMARIZER)]
    assert summarizer.ref == world.ref(SUMMARIZER)
    assert summarizer.tags == {"leash:agent": "true", "leash:owner": "bob@example.com"}
    assert summarizer.attached_policies[0].startswith("Cognitive Services OpenAI User @ ")
    assert summarizer.trust_principals == ()  # user-assigned: anything may hold it
    assert found[(AGENTS, FORECAST)].attached_policies == (f"Owner @ {AGENTS_SCOPE}",)
    # The PIM-less subscription is read like any other; users are not agents.
    assert found[(DATA, ETL)].attached_policies == (f"User Access Administrator @ {DATA_SCOPE}",)
    assert found[(DATA, FORECAST)].attached_policies[0].startswith("Storage Blob Data Contributor")
    assert {i.ref.name for i in result.identities} == {TRIAGE, FORECAST, ETL, SUMMARIZER}


async def test_discover_lists_leash_grants_as_inline_policies(
    world: World, provider: AzureProvider
) -> None:
    await provider.grant(world.ref(TRIAGE), spec("g-pim01", BLOB_READER))
    await provider.grant(world.ref(ETL, DATA), spec("g-plain1", "Reader"))

    result = await provider.discover()

    found = {(i.ref.account, i.ref.name): i for i in result.identities}
    assert found[(AGENTS, TRIAGE)].inline_policies == ("leash-grant-g-pim01",)
    assert found[(AGENTS, TRIAGE)].attached_policies == (f"Contributor @ {SUPPORT_GROUP}",)
    assert found[(DATA, ETL)].inline_policies == ("leash-grant-g-plain1",)
    assert not any("Reader @" in name for name in found[(DATA, ETL)].attached_policies)


async def test_discover_reports_an_unreadable_subscription_and_goes_on(world: World) -> None:
    missing = "00000000-0000-4000-8000-000000000000"

    result = await world.provider(subscriptions=[AGENTS, missing]).discover()

    assert set(result.failures) == {missing}
    assert {i.ref.account for i in result.identities} == {AGENTS}


def test_graph_tags_and_the_trust_heuristic() -> None:
    assert graph_tags(["leash:agent=true", "HideApp", "k= v "]) == {
        "leash:agent": "true",
        "hideapp": "true",  # tag keys are compared in any case, so they are kept lower-cased
        "k": "v",
    }
    openai = "/subscriptions/s/resourceGroups/g/providers/Microsoft.CognitiveServices/accounts/x"
    system_assigned = {"servicePrincipalType": "ManagedIdentity", "alternativeNames": [openai]}
    assert trusted_services(system_assigned) == ("cognitiveservices.azure.com",)
    user_assigned = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/x/y"
    assert trusted_services({**system_assigned, "alternativeNames": [user_assigned]}) == ()
    assert trusted_services({"servicePrincipalType": "Application"}) == ()


# Grants through PIM


async def test_pim_grant_expires_by_itself(world: World, provider: AzureProvider) -> None:
    triage = world.ref(TRIAGE)
    grant = spec("g-pim01", BLOB_READER, minutes=30)

    assert await provider.grant_mechanism(triage) == PIM
    applied = await provider.grant(triage, grant)

    assert applied.artefact == "leash-grant-g-pim01"
    assert applied.mechanism == PIM
    (held,) = [a for a in world.assignments(triage) if a["roleName"] == BLOB_READER]
    assert held["viaPim"] is True
    assert held["scope"] == AGENTS_SCOPE
    assert held["endDateTime"] == grant.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await provider.grant_artefacts(triage) == (
        GrantArtefact(identity=triage, grant_id="g-pim01", artefact="leash-grant-g-pim01"),
    )
    writes = len(world.writes())

    world.emulator.set_now(grant.expires_at + timedelta(seconds=1))

    assert (BLOB_READER, AGENTS_SCOPE) not in world.held(triage)  # Azure ended it
    assert len(world.writes()) == writes  # Leash did nothing
    assert await provider.grant_artefacts(triage) == ()
    assert await provider.revoke(triage, "g-pim01") is False  # already gone
    assert ("Contributor", SUPPORT_GROUP) in world.held(triage)


async def test_pim_refuses_less_than_five_minutes(world: World, provider: AzureProvider) -> None:
    triage = world.ref(TRIAGE)

    with pytest.raises(CloudLimitError) as raised:
        await provider.grant(triage, spec("g-short1", BLOB_READER, minutes=4))

    assert raised.value.code == "PimMinimumDuration"
    assert "5 minutes" in str(raised.value)
    assert world.writes() == []


async def test_a_grant_already_expired_is_refused(world: World, provider: AzureProvider) -> None:
    with pytest.raises(CloudError) as raised:
        await provider.grant(world.ref(TRIAGE), spec("g-late01", BLOB_READER, minutes=-1))

    assert raised.value.code == "Expired"
    assert world.writes() == []


async def test_pim_grant_and_revoke_are_idempotent(world: World, provider: AzureProvider) -> None:
    triage = world.ref(TRIAGE)
    grant = spec("g-twice1", BLOB_READER, "Reader")

    await provider.grant(triage, grant)
    writes = len(world.writes())
    await provider.grant(triage, grant)

    assert len(world.writes()) == writes  # the second time wrote nothing
    via_pim = [a for a in world.assignments(triage) if a["viaPim"]]
    assert sorted(a["roleName"] for a in via_pim) == ["Reader", BLOB_READER]
    assert [a.grant_id for a in await provider.grant_artefacts(triage)] == ["g-twice1"]
    assert await provider.revoke(triage, "g-twice1") is True
    assert await provider.revoke(triage, "g-twice1") is False
    assert world.held(triage) == {("Contributor", SUPPORT_GROUP)}
    assert await provider.grant_artefacts(triage) == ()


async def test_revoke_removes_only_that_grant(world: World, provider: AzureProvider) -> None:
    triage = world.ref(TRIAGE)
    await provider.grant(triage, spec("g-keep01", BLOB_READER))
    await provider.grant(triage, spec("g-gone01", "Reader"))

    assert await provider.revoke(triage, "g-gone01") is True

    assert [a.grant_id for a in await provider.grant_artefacts(triage)] == ["g-keep01"]
    assert (BLOB_READER, AGENTS_SCOPE) in world.held(triage)
    assert ("Reader", AGENTS_SCOPE) not in world.held(triage)


# Grants as plain role assignments (no PIM)


async def test_without_pim_a_grant_is_a_plain_assignment_revoke_deletes(
    world: World, provider: AzureProvider
) -> None:
    etl = world.ref(ETL, DATA)
    grant = spec("g-plain1", BLOB_READER, minutes=2)  # no PIM minimum without PIM

    assert await provider.grant_mechanism(etl) == PLAIN
    applied = await provider.grant(etl, grant)
    again = await provider.grant(etl, grant)

    assert applied.mechanism == again.mechanism == PLAIN
    (held,) = [a for a in world.assignments(etl) if a["roleName"] == BLOB_READER]
    assert held["viaPim"] is False
    stored = [a for a in world.assignments(etl) if a["name"] == held["name"]]
    assert len(stored) == 1
    assert await provider.grant_artefacts(etl) == (
        GrantArtefact(identity=etl, grant_id="g-plain1", artefact="leash-grant-g-plain1"),
    )
    assert await provider.revoke(etl, "g-plain1") is True
    assert await provider.revoke(etl, "g-plain1") is False
    assert (BLOB_READER, DATA_SCOPE) not in world.held(etl)


async def test_pim_off_by_configuration_gives_plain_assignments(world: World) -> None:
    provider = world.provider(pim=False)
    triage = world.ref(TRIAGE)

    assert await provider.grant_mechanism(triage) == PLAIN
    applied = await provider.grant(triage, spec("g-nopim1", "Reader"))

    assert applied.mechanism == PLAIN
    assert [a["viaPim"] for a in world.assignments(triage) if a["roleName"] == "Reader"] == [False]


async def test_a_licence_refusal_at_grant_time_falls_back(world: World) -> None:
    provider = world.provider()
    triage = world.ref(TRIAGE)
    assert await provider.grant_mechanism(triage) == PIM
    world.emulator.pim_enabled(AGENTS, False)  # the licence lapsed after the approval card

    applied = await provider.grant(triage, spec("g-lapse1", "Reader"))

    assert applied.mechanism == PLAIN
    assert await provider.grant_mechanism(triage) == PLAIN
    assert await provider.revoke(triage, "g-lapse1") is True


@pytest.mark.parametrize(
    ("actions", "resources", "code"),
    [
        (("s3:GetObject",), (), "BadRole"),
        ((), (), "NoActions"),
        (("Reader",), (DATA_SCOPE,), "UnsupportedResource"),
        (("Contributor",), (SUPPORT_GROUP,), "RoleAlreadyAssigned"),
    ],
    ids=["aws-action", "no-roles", "other-subscription", "already-held"],
)
async def test_grant_refuses_what_azure_cannot_hold(
    world: World,
    provider: AzureProvider,
    actions: tuple[str, ...],
    resources: tuple[str, ...],
    code: str,
) -> None:
    with pytest.raises(CloudError) as raised:
        await provider.grant(world.ref(TRIAGE), spec("g-bad001", *actions, resources=resources))

    assert raised.value.code == code
    assert world.writes() == []


async def test_grant_takes_role_ids_and_scopes(world: World, provider: AzureProvider) -> None:
    triage = world.ref(TRIAGE)
    reader = (
        "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
    )

    await provider.grant(triage, spec("g-scope1", reader, resources=(SUPPORT_GROUP,)))

    assert ("Reader", SUPPORT_GROUP) in world.held(triage)


# Usage


async def test_usage_maps_the_activity_log_onto_roles(
    world: World, provider: AzureProvider
) -> None:
    triage = world.ref(TRIAGE)
    # It allows deployments/write too, but on another resource group than the one acted on.
    world.assign(triage, "Managed Identity Operator", FORECAST_GROUP)
    await provider.grant(triage, spec("g-usage1", BLOB_READER))  # Leash's own: left out
    since = datetime.now(UTC) - timedelta(days=30)

    report = await provider.usage(triage, since)

    assert report.status is UsageStatus.COMPLETE
    assert report.granted == ("Contributor", "Managed Identity Operator")
    assert set(report.used) == {
        "Microsoft.Storage/storageAccounts/read",
        "Microsoft.Resources/deployments/write",
    }
    assert report.not_used == ("Managed Identity Operator",)
    assert report.unknown == ()
    assert report.last_activity_at is not None
    assert report.last_activity_at > since


async def test_usage_leaves_what_the_log_cannot_see_unknown(
    world: World, provider: AzureProvider
) -> None:
    forecast, warehouse = world.ref(FORECAST), world.ref(FORECAST, DATA)
    world.assign(forecast, "Reader")
    since = datetime.now(UTC) - timedelta(days=60)

    report = await provider.usage(forecast, since)
    data = await provider.usage(warehouse, since)
    summarizer = await provider.usage(world.ref(SUMMARIZER), since)

    assert report.not_used == ("Owner",)  # idle for 120 days
    assert report.unknown == ("Reader",)  # reads only: the activity log does not record them
    assert report.last_activity_at is None
    assert data.not_used == ()
    assert "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read" in data.unknown
    assert summarizer.not_used == ()
    assert summarizer.unknown  # OpenAI calls are data actions


async def test_usage_needs_the_resource_inside_the_roles_scope(
    world: World, provider: AzureProvider
) -> None:
    triage = world.ref(TRIAGE)
    elsewhere = FORECAST_GROUP
    world.emulator.add_activity(
        AGENTS,
        triage.native_id,
        "Microsoft.Compute/virtualMachines/write",
        datetime.now(UTC) - timedelta(days=1),
        resource_id=f"{elsewhere}/providers/Microsoft.Compute/virtualMachines/vm1",
    )

    report = await provider.usage(triage, datetime.now(UTC) - timedelta(days=5))

    assert report.used == {}  # its Contributor is on rg-support-bots only
    assert report.not_used == ("Contributor",)


async def test_usage_counts_only_the_window(world: World, provider: AzureProvider) -> None:
    etl = world.ref(ETL, DATA)
    now = datetime.now(UTC)
    write = "Microsoft.Authorization/roleAssignments/write"
    world.emulator.add_activity(DATA, etl.native_id, write, now - timedelta(days=40))

    recent = await provider.usage(etl, now - timedelta(days=30))
    longer = await provider.usage(etl, now - timedelta(days=60))

    assert recent.not_used == ("User Access Administrator",)
    assert recent.last_activity_at is not None  # listKeys, allowed by no granted role
    assert longer.not_used == ()
    assert set(longer.used) == {write}


async def test_usage_is_unknown_when_the_activity_log_refuses(world: World) -> None:
    past = datetime.now(UTC) - timedelta(days=100)
    provider = world.provider(clock=lambda: past)  # asks for events the log no longer keeps

    report = await provider.usage(world.ref(TRIAGE), past - timedelta(days=30))

    assert report.status is UsageStatus.UNKNOWN
    assert "activity log could not be read" in report.note
    assert report.not_used == ()


# Restriction


async def test_restrict_then_unrestrict_restores_the_exact_assignments(
    world: World, provider: AzureProvider
) -> None:
    triage = world.ref(TRIAGE)
    world.assign(triage, "Reader")
    world.assign(triage, "Managed Identity Operator", SUPPORT_GROUP)
    await provider.grant(triage, spec("g-rest01", BLOB_READER))
    original = world.exact(triage)

    plan = await provider.plan_restrict(
        triage, ["Reader", "Managed Identity Operator", "Contributor"], keep=["Contributor"]
    )

    assert plan.deny == (f"Managed Identity Operator @ {SUPPORT_GROUP}", f"Reader @ {AGENTS_SCOPE}")
    assert plan.mechanism == "azure-remove-role-assignments"
    assert len(json.loads(plan.document)["remove"]) == 2
    snapshot = await provider.restrict(triage, plan)
    assert world.held(triage) == {("Contributor", SUPPORT_GROUP), (BLOB_READER, AGENTS_SCOPE)}
    assert json.loads(json.dumps(snapshot)) == snapshot

    assert await provider.unrestrict(triage, snapshot) is True
    assert world.exact(triage) == original
    assert await provider.unrestrict(triage, snapshot) is False


async def test_restrict_refuses_when_assignments_changed_since_the_plan(
    world: World, provider: AzureProvider
) -> None:
    triage = world.ref(TRIAGE)
    world.assign(triage, "Reader")
    plan = await provider.plan_restrict(triage, ["Reader"], keep=[])
    world.assign(triage, "Reader", SUPPORT_GROUP)
    before = world.exact(triage)

    with pytest.raises(CloudConflictError, match="changed since the preview"):
        await provider.restrict(triage, plan)

    assert world.exact(triage) == before


async def test_plan_refuses_when_nothing_is_left_to_restrict(
    world: World, provider: AzureProvider
) -> None:
    with pytest.raises(CloudError) as raised:
        await provider.plan_restrict(world.ref(TRIAGE), ["Owner", "Contributor"], ["Contributor"])

    assert raised.value.code == "NothingToRestrict"


# Quarantine


async def test_quarantine_removes_every_assignment_and_release_restores_them(
    world: World, provider: AzureProvider
) -> None:
    triage = world.ref(TRIAGE)
    world.assign(triage, "Reader")
    original = world.exact(triage)
    await provider.grant(triage, spec("g-quar01", BLOB_READER))
    at = datetime.now(UTC)

    snapshot = await provider.quarantine(triage, at=at, reason="inactive")

    assert world.assignments(triage) == []
    assert snapshot["ended_grants"] == ["g-quar01"]
    assert json.loads(json.dumps(snapshot)) == snapshot
    with pytest.raises(CloudConflictError):
        await provider.quarantine(triage, at=at, reason="again")
    assert await provider.release(triage, snapshot) is True
    assert world.exact(triage) == original  # the grant is not given back
    assert await provider.release(triage, snapshot) is False
    assert TRIAGE in {i.ref.name for i in (await provider.discover()).identities}


async def test_release_refuses_another_identitys_snapshot(
    world: World, provider: AzureProvider
) -> None:
    snapshot = await provider.quarantine(world.ref(FORECAST), at=datetime.now(UTC), reason="x")

    with pytest.raises(CloudError) as raised:
        await provider.release(world.ref(TRIAGE), snapshot)

    assert raised.value.code == "BadSnapshot"


# Guardrail

GUARDED = (
    "Microsoft.Authorization/roleAssignments/write",
    "Microsoft.Authorization/roleDefinitions/write",
    "Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",
    "iam:PassRole",  # another cloud's: skipped
    "iam.serviceAccounts.actAs",
)


async def test_guardrail_removes_owner_unless_exempted(
    world: World, provider: AzureProvider
) -> None:
    forecast = world.ref(FORECAST)
    now = datetime.now(UTC)

    preview = await provider.guardrail(forecast, GUARDED, dry_run=True)

    assert preview.changed
    (entry,) = json.loads(preview.before or "null")
    assert (entry["role"], entry["scope"]) == ("Owner", AGENTS_SCOPE)
    assert entry["privileged"] == list(GUARDED[:3])
    assert json.loads(preview.after) == []
    assert world.writes() == []
    exempt = [Exemption(action, now + timedelta(hours=1), "g-ex0001") for action in GUARDED[:3]]
    kept = await provider.guardrail(forecast, GUARDED, exempt)
    assert not kept.changed
    assert ("Owner", AGENTS_SCOPE) in world.held(forecast)
    expired = [Exemption(e.action, now - timedelta(minutes=1), e.grant_id) for e in exempt]

    change = await provider.guardrail(forecast, GUARDED, expired)

    assert change.before == preview.before  # what went is kept in the change
    assert change.mechanism == "azure-remove-role-assignments"
    assert ("Owner", AGENTS_SCOPE) not in world.held(forecast)
    again = await provider.guardrail(forecast, GUARDED)
    assert not again.changed


async def test_guardrail_honours_not_actions_and_other_clouds(
    world: World, provider: AzureProvider
) -> None:
    triage = world.ref(TRIAGE)  # Contributor: notActions exclude Microsoft.Authorization writes

    change = await provider.guardrail(triage, GUARDED[:2])
    foreign = await provider.guardrail(world.ref(FORECAST), ["iam:PassRole"])

    assert not change.changed
    assert not foreign.changed
    assert world.writes() == []


def test_wildcard_actions_meet() -> None:
    operator = RoleDefinition(
        "/x/f1a07417-d97a-45cb-824c-7a7467783830",
        "Managed Identity Operator",
        actions=("Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action",),
    )
    assert operator.confers("Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action")
    assert intersects("*/read", "Microsoft.Storage/*")
    assert not intersects("*/read", "Microsoft.Storage/*/write")


# Permissions and errors


def test_required_permissions_name_what_leash_calls(provider: AzureProvider) -> None:
    needed = set(provider.required_permissions())

    assert {
        "Microsoft.Authorization/roleAssignments/write",
        "Microsoft.Authorization/roleAssignments/delete",
        "Microsoft.Authorization/roleAssignmentScheduleRequests/write",
        "Microsoft.Insights/eventtypes/values/read",
        "Microsoft.ManagedIdentity/userAssignedIdentities/read",
        "graph:Application.Read.All",
    } <= needed


class _Response:
    """Just enough of an azure-core HTTP response for HttpResponseError to read."""

    def __init__(self, status: int, code: str, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.reason = "reason"
        self.headers = headers or {}
        self.content_type = "application/json"
        self._body = json.dumps({"error": {"code": code, "message": f"{code} happened"}})

    def text(self, encoding: str | None = None) -> str:
        return self._body

    def body(self) -> bytes:
        return self._body.encode()


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (401, "InvalidAuthenticationToken", CloudAccessDeniedError),
        (403, "AuthorizationFailed", CloudAccessDeniedError),
        (404, "RoleAssignmentNotFound", CloudNotFoundError),
        (409, "RoleAssignmentExists", CloudConflictError),
        (429, "TooManyRequests", CloudThrottledError),
        (503, "ServiceUnavailable", CloudUnavailableError),
        (400, "RoleAssignmentLimitExceeded", CloudLimitError),
        (400, "AadPremiumLicenseRequired", CloudError),
    ],
    ids=["401", "403", "404", "409", "429", "503", "limit", "no-pim-licence"],
)
def test_errors_are_translated_at_the_edge(status: int, code: str, kind: type[CloudError]) -> None:
    error = HttpResponseError(response=_Response(status, code))  # type: ignore[arg-type]

    translated = translate(error, operation="roleAssignments.create", target="scope s")

    assert type(translated) is kind
    assert translated.code == code
    assert "roleAssignments.create" in str(translated)


def test_missing_credentials_are_a_configuration_error() -> None:
    translated = translate(ClientAuthenticationError("no credential"), operation="x", target="y")

    assert isinstance(translated, CloudConfigurationError)


def test_throttling_is_retried_after_what_azure_asked() -> None:
    clients = AzureClients(
        credential=None,
        base_url=None,
        graph_url=None,
        connection_verify=True,
        max_attempts=2,
        backoff=0.01,
    )
    throttled = HttpResponseError(
        response=_Response(429, "TooManyRequests", {"Retry-After": "0"})  # type: ignore[arg-type]
    )
    calls: list[str] = []

    def call() -> str:
        calls.append("call")
        if len(calls) == 1:
            raise throttled
        return "done"

    assert clients.call("roleAssignments.list", "s", call) == "done"
    assert calls == ["call", "call"]
    later = HttpResponseError(
        response=_Response(429, "TooManyRequests", {"Retry-After": "7"})  # type: ignore[arg-type]
    )
    translated = translate(later, operation="o", target="t")
    translated.__cause__ = later
    assert retry_after(translated) == 7.0


async def test_a_rejected_token_is_access_denied(world: World) -> None:
    provider = AzureProvider(
        subscriptions=[AGENTS],
        credential=_Token(),
        base_url=world.emulator.endpoint,
        graph_url=world.emulator.endpoint,
        connection_verify=world.emulator.cert_path,
        max_attempts=1,
    )

    result = await provider.discover()

    assert "InvalidAuthenticationToken" in result.failures[AGENTS]
    with pytest.raises(CloudAccessDeniedError):
        await provider.grant_mechanism(world.ref(TRIAGE))


async def test_unreachable_azure_is_reported() -> None:
    provider = AzureProvider(
        credential=_Token(),
        base_url="https://127.0.0.1:9",
        graph_url="https://127.0.0.1:9",
        max_attempts=1,
    )

    result = await provider.discover()

    assert result.identities == ()
    assert "could not be reached" in result.failures["subscriptions"]


class _Token:
    """A credential whose token nobody accepts."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("stale", int(datetime.now(UTC).timestamp()) + 3600)
