"""Inventory and ownership against the moto server: discovery, classification, owners,
deleted identities, bad tags, failing accounts, unowned alerts and attestation."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import col, select

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.messages import NoticeKind
from bot.domain.states import ActorKind
from bot.store.tables import AuditEvent, Identity, Ownership
from cloud.aws import AwsProvider
from cloud.sandbox import Sandbox
from tests.e2e.helpers import account_iam
from tests.fakes.notifier import RecordingNotifier


def user(name: str) -> Actor:
    return Actor(name, ActorKind.USER, "console")


async def identity(leash: Leash, name: str) -> tuple[Identity, Ownership | None]:
    async with leash.context.sessions() as session:
        found = (await session.exec(select(Identity).where(col(Identity.name) == name))).one()
        return found, await session.get(Ownership, found.id)


async def test_discovery_classifies_and_takes_owners_from_tags(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    skipped = {"AWSReservedSSO_Admin_abc", "AWSServiceRoleForAutoScaling"}  # human / AWS-owned
    for seeded in fresh_sandbox.identities:
        if seeded.name in skipped:
            continue
        found, owner = await identity(leash, seeded.name)
        assert found.account == seeded.account.id
        assert (found.classification == "ai_agent") is seeded.agent, seeded.name
        assert (owner.primary_owner if owner else None) == seeded.owner, seeded.name
        # Who created it and who granted it permissions, from the sandbox's CloudTrail.
        assert found.created_by == seeded.created_by, seeded.name
        assert tuple(found.granted_by) == seeded.granted_by, seeded.name
    triage, owner = await identity(leash, "support-triage-agent")
    assert triage.classification_reason == "tag leash:agent=true"
    assert owner is not None
    assert (owner.team, owner.source) == ("support-bots", "tag")
    ci, _ = await identity(leash, "ci-deploy-role")
    assert ci.classification == "workload"
    creators = {s.created_by for s in fresh_sandbox.identities if s.agent}
    assert None in creators  # one agent's creation is beyond CloudTrail's look-back
    assert len(creators - {None}) >= 2
    shown = await leash.handler.handle_text("owner show support-triage-agent", actor=user("dev"))
    seeded = next(s for s in fresh_sandbox.identities if s.name == "support-triage-agent")
    assert f"Created by: {seeded.created_by}" in shown.lines


@pytest.mark.parametrize(
    "rules",
    [{"classification": {"agent_tags": {}, "agent_name_patterns": ["ci-*"]}}],
    indirect=True,
    ids=["name pattern"],
)
async def test_classification_rules_come_from_the_policy_file(leash: Leash) -> None:
    ci, _ = await identity(leash, "ci-deploy-role")
    assert (ci.classification, ci.classification_reason) == ("ai_agent", "name matches ci-*")


async def test_deleted_identity_is_marked_not_forgotten(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    iam = fresh_sandbox.session().client("iam", endpoint_url=fresh_sandbox.endpoint_url)
    for policy in iam.list_role_policies(RoleName="ticket-router-agent")["PolicyNames"]:
        iam.delete_role_policy(RoleName="ticket-router-agent", PolicyName=policy)
    for attached in iam.list_attached_role_policies(RoleName="ticket-router-agent")[
        "AttachedPolicies"
    ]:
        iam.detach_role_policy(RoleName="ticket-router-agent", PolicyArn=attached["PolicyArn"])
    iam.delete_role(RoleName="ticket-router-agent")
    report = await leash.lifecycle.inventory.refresh()
    gone, _ = await identity(leash, "ticket-router-agent")
    assert gone.present is False
    assert gone.deleted_at is not None
    shown = await leash.handler.handle_text("owner show ticket-router-agent", actor=user("dev"))
    assert "(deleted" in "\n".join(shown.lines)
    still, _ = await identity(leash, "support-triage-agent")
    assert still.present is True
    assert report.failures == {}


async def test_malformed_owner_tag_is_reported_and_not_used(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    iam = fresh_sandbox.session().client("iam", endpoint_url=fresh_sandbox.endpoint_url)
    iam.tag_role(RoleName="knowledge-base-agent", Tags=[{"Key": "owner", "Value": "John Smith!"}])
    report = await leash.lifecycle.inventory.refresh()
    problems = [why for why in report.failures.values() if "knowledge-base-agent" in why]
    assert len(problems) == 1
    assert "neither an e-mail nor a chat id" in problems[0]
    _, owner = await identity(leash, "knowledge-base-agent")
    assert owner is None or owner.primary_owner is None


async def test_a_failing_account_is_reported_and_keeps_its_inventory(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    member = fresh_sandbox.account("ml-dev")
    before, _ = await identity(leash, "model-eval-agent")
    assert before.account == member.id
    member_iam = account_iam(fresh_sandbox, "ml-dev")
    for policy in member_iam.list_role_policies(RoleName="LeashReadOnly")["PolicyNames"]:
        member_iam.delete_role_policy(RoleName="LeashReadOnly", PolicyName=policy)
    member_iam.delete_role(RoleName="LeashReadOnly")
    # A new provider: no credentials cached from the discovery at start.
    leash.context.providers = {
        "aws": AwsProvider(
            session_factory=fresh_sandbox.session, endpoint_url=fresh_sandbox.endpoint_url
        )
    }
    report = await leash.lifecycle.inventory.refresh()
    assert any(member.id in scope for scope in report.failures), report.failures
    kept, _ = await identity(leash, "model-eval-agent")
    assert kept.present is True  # not scanned is not deleted
    other, _ = await identity(leash, "invoice-reader-agent")
    assert other.present is True
    async with leash.context.sessions() as session:
        refreshed = (
            await session.exec(
                select(AuditEvent).where(col(AuditEvent.event_type) == "inventory.refreshed")
            )
        ).all()
    assert refreshed[-1].outcome == "failure"


async def test_unowned_identities_are_alerted_once_until_they_change(
    leash: Leash, fresh_sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    # Leash alerted when it discovered them at start.
    alerts = [n for n in notifier.of_kind(NoticeKind.UNOWNED) if "secops" in n.recipients]
    names = {n.reply.text.split(" ")[0] for n in alerts}
    assert "forecast-agent" in names
    assert "support-triage-agent" not in names
    assert len(alerts) == len({n.reply.choices[0].command for n in alerts})  # one per identity
    forecast = next(n for n in alerts if n.reply.text.startswith("forecast-agent"))
    assert [c.label for c in forecast.reply.choices] == ["Claim", "Assign to…"]
    assert await leash.lifecycle.stewardship.alert_unowned() == 0  # no repeat
    iam = account_iam(fresh_sandbox, "ml-prod")
    iam.tag_role(RoleName="forecast-agent", Tags=[{"Key": "cost-center", "Value": "42"}])
    await leash.lifecycle.inventory.refresh()
    assert await leash.lifecycle.stewardship.alert_unowned() == 1  # it changed
    claimed = await leash.handler.handle_text(
        forecast.reply.choices[0].command, actor=user("owner-b")
    )
    assert claimed.ok, claimed.text
    assert "Proposed owner-b as the owner of forecast-agent" in claimed.text
    confirmed = await leash.handler.handle_text(
        "owner confirm forecast-agent", actor=user("secops")
    )
    assert confirmed.ok, confirmed.text
    iam.tag_role(RoleName="forecast-agent", Tags=[{"Key": "cost-center", "Value": "43"}])
    await leash.lifecycle.inventory.refresh()
    assert await leash.lifecycle.stewardship.alert_unowned() == 0  # owned now


@pytest.mark.parametrize(
    "rules", [{"ownership": {"attest_every": "1s"}}], indirect=True, ids=["1s attestation"]
)
async def test_owners_are_asked_to_reconfirm_and_overdue_ones_reported(
    leash: Leash, notifier: RecordingNotifier
) -> None:
    await asyncio.sleep(1.1)
    asked = await leash.lifecycle.stewardship.ask_attestation()
    requests = notifier.of_kind(NoticeKind.ATTESTATION)
    assert asked == len(requests) > 0
    to_owner_a = next(n for n in requests if n.recipients == ("owner-a",))
    assert to_owner_a.reply.choices[0].label == "Still mine"
    overdue = notifier.of_kind(NoticeKind.ATTESTATION_OVERDUE)
    assert overdue[-1].recipients == ("secops",)
    assert await leash.lifecycle.stewardship.ask_attestation() == 0  # asked already
    stranger = await leash.handler.handle_text(
        to_owner_a.reply.choices[0].command, actor=user("owner-b")
    )
    assert not stranger.ok
    confirmed = await leash.handler.handle_text(
        to_owner_a.reply.choices[0].command, actor=user("owner-a")
    )
    assert confirmed.ok, confirmed.text
    name = to_owner_a.reply.text.removeprefix("Do you still own ").split("?")[0]
    shown = await leash.handler.handle_text(f"owner show {name}", actor=user("dev"))
    assert any(line.startswith("Ownership: confirmed by owner-a") for line in shown.lines)


async def test_an_owner_tag_rewritten_on_an_owned_identity_is_only_a_proposal(
    leash: Leash, fresh_sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    """Whoever can write tags is not thereby the owner (issue 17, finding 2)."""
    name = "support-triage-agent"
    iam = account_iam(fresh_sandbox, fresh_sandbox.identity(name).account.name)
    iam.untag_role(RoleName=name, TagKeys=["owner"])
    iam.tag_role(RoleName=name, Tags=[{"Key": "OWNER", "Value": "mallory@example.com"}])
    await leash.lifecycle.inventory.refresh()

    async with leash.context.sessions() as session:
        identity = (await session.exec(select(Identity).where(col(Identity.name) == name))).one()
        ownership = await session.get(Ownership, identity.id)
    assert ownership is not None
    assert (ownership.primary_owner, ownership.proposed_owner) == (
        "owner-a",
        "mallory@example.com",
    )
    told = [n for n in notifier.of_kind(NoticeKind.UNOWNED) if "now names" in n.reply.text]
    assert [set(n.recipients) for n in told] == [{"owner-a", "secops"}]
    approver = await leash.handler.handle_text(
        f"request {name} s3-read for 10m because x", actor=user("dev")
    )
    assert "owner-a owns support-triage-agent" in "\n".join(approver.lines)
    refused = await leash.handler.handle_text(f"owner confirm {name}", actor=user("mallory"))
    assert not refused.ok
    confirmed = await leash.handler.handle_text(f"owner confirm {name}", actor=user("secops"))
    assert confirmed.text == f"Confirmed: {name} is now owned by mallory@example.com."
    await leash.lifecycle.inventory.refresh()  # the tag now agrees: nothing more to propose
    assert (
        len([n for n in notifier.of_kind(NoticeKind.UNOWNED) if "now names" in n.reply.text]) == 1
    )
