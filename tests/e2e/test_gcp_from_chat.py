"""Google Cloud from chat: request, approve, a conditional binding in the project's IAM policy
that IAM itself stops honouring at expiry, and Leash removing it on time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.access.drafting import RequestInput
from bot.app import Leash, build
from bot.config import Settings
from bot.domain.actors import Actor
from bot.domain.messages import NoticeKind
from bot.domain.states import ActorKind, GrantState
from bot.inventory.ownership import OwnerChange
from cloud.sandbox import Sandbox
from tests.conftest import make_rules
from tests.e2e.helpers import audit_types, eventually, grant
from tests.fakes.notifier import RecordingNotifier

TRIAGE = "support-triage-gcp-agent"
PROJECT = "leash-demo-agents"
MEMBER = f"serviceAccount:{TRIAGE}@{PROJECT}.iam.gserviceaccount.com"
OWNER = Actor("alice@example.com", ActorKind.USER, "test")
DEV = Actor("dev", ActorKind.USER, "test")


@pytest.fixture
async def gcp_leash(
    database_url: str, gcp_sandbox: Sandbox, notifier: RecordingNotifier
) -> AsyncIterator[Leash]:
    app = build(
        Settings(database_url=database_url, sweep_seconds=0.5),
        sandbox=gcp_sandbox,
        notifiers=[notifier],
        rules=make_rules(admins=["secops"]),
    )
    await app.start()
    yield app
    await app.close()


def _leash_bindings(sandbox: Sandbox) -> list[dict[str, object]]:
    assert sandbox.gcp is not None
    policy = sandbox.gcp.iam_policy(PROJECT)
    return [
        binding
        for binding in policy.get("bindings", [])
        if str((binding.get("condition") or {}).get("title", "")).startswith("leash-grant-")
    ]


async def test_request_approve_binding_present_then_expiry_then_binding_gone(
    gcp_leash: Leash, gcp_sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    assert gcp_sandbox.gcp is not None
    reply = await gcp_leash.handler.handle_text(
        f"request {TRIAGE} bigquery-read for 3s because nightly report", actor=DEV
    )
    assert reply.ok, reply.text
    request_id = reply.text.split()[1]
    # The owner comes from the service account's description, as tags do on AWS.
    assert "alice@example.com" in reply.text
    (card,) = notifier.of_kind(NoticeKind.APPROVAL_NEEDED)
    assert "Why: expiry: Google Cloud ends it by itself (an IAM condition)" in card.reply.lines
    approved = await gcp_leash.handler.handle_text(f"approve {request_id}", actor=OWNER)
    assert approved.ok, approved.text
    grant_id = next(word for word in approved.text.split() if word.startswith("g-"))

    (binding, *more) = _leash_bindings(gcp_sandbox)
    roles = sorted(str(b["role"]) for b in [binding, *more])
    assert roles == ["roles/bigquery.dataViewer", "roles/bigquery.jobUser"]
    condition = binding["condition"]
    assert isinstance(condition, dict)
    assert condition["title"] == f"leash-grant-{grant_id}"
    record = await grant(gcp_leash, grant_id)
    stamp = record.expires_at.strftime("%Y-%m-%dT%H:%M:%S")
    assert condition["expression"].startswith(f'request.time < timestamp("{stamp}')
    # IAM's own clock: the binding counts before the expiry and not after, whatever Leash does.
    emulator = gcp_sandbox.gcp
    before = record.expires_at - timedelta(seconds=1)
    after = record.expires_at + timedelta(seconds=1)
    assert "roles/bigquery.dataViewer" in emulator.effective_roles(MEMBER, PROJECT, before)
    assert "roles/bigquery.dataViewer" not in emulator.effective_roles(MEMBER, PROJECT, after)
    assert emulator.sets_without_etag == 0

    async def revoked() -> bool:
        return (await grant(gcp_leash, grant_id)).state == GrantState.REVOKED

    assert await eventually(revoked, within=15)
    assert _leash_bindings(gcp_sandbox) == []
    assert emulator.sets_without_etag == 0
    types = await audit_types(gcp_leash, grant_id=grant_id)
    assert types.count("grant.applied") == 1
    assert types.count("grant.revoked") == 1


async def test_gcp_requests_name_roles_and_refuse_aws_actions_and_resources(
    gcp_leash: Leash,
) -> None:
    await gcp_leash.lifecycle.owners.set(TRIAGE, OwnerChange(OWNER.name), actor=OWNER)
    refused = await gcp_leash.handler.handle_text(
        f"request {TRIAGE} s3:GetObject for 10m because x", actor=DEV
    )
    assert not refused.ok
    assert "Not a GCP role: s3:GetObject" in refused.text
    scoped = await gcp_leash.handler.handle_text(
        f"request {TRIAGE} s3-read on arn:aws:s3:::b for 10m because x", actor=DEV
    )
    assert "leave out `on …`" in scoped.text
    aws_only = await gcp_leash.handler.handle_text(
        f"request {TRIAGE} pass-role for 10m because x", actor=DEV
    )
    assert "names nothing for GCP" in aws_only.text
    minting = await gcp_leash.lifecycle.requests.submit(
        RequestInput(
            identity=TRIAGE,
            duration=timedelta(minutes=10),
            reason="sign a token",
            permission_set="gcp-token-creator",
        ),
        actor=DEV,
    )
    assert minting.tier == "escalation"  # token creation: only admins approve


async def test_one_role_typed_in_chat_is_a_role_tiered_on_what_it_carries(
    gcp_leash: Leash,
) -> None:
    """`request … roles/x` names a role, not a permission set; unknown custom roles are refused."""
    asked = await gcp_leash.handler.handle_text(
        f"request {TRIAGE} roles/container.admin for 10m because debug the cluster", actor=DEV
    )
    assert asked.ok, asked.text
    said = "\n".join((asked.text, *asked.lines))
    assert "escalation" in said
    assert "roles/container.admin carries container.clusters" in said, said
    ghost = await gcp_leash.handler.handle_text(
        f"request {TRIAGE} projects/{PROJECT}/roles/ghost for 10m because custom", actor=DEV
    )
    assert not ghost.ok
    assert f"projects/{PROJECT}/roles/ghost: Google IAM does not show this role" in ghost.text
    assert "permission set" not in ghost.text
