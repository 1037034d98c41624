"""Least privilege end to end against the moto server: nightly scan and owner messages,
restrict / unrestrict, quarantine / release, guardrail exemptions, report-only mode."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import col, select

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.messages import NoticeKind, Reply
from bot.domain.states import ActorKind
from bot.store import audit
from bot.store.tables import AuditEvent, Enforcement
from cloud.aws.policy_document import aws_timestamp
from cloud.sandbox import Sandbox, ServiceUse
from tests.e2e.helpers import GRANT_ID, REQUEST_ID, account_iam, grant
from tests.fakes.notifier import RecordingNotifier
from tests.iam_evaluation import role_documents

OWNER_B = Actor("owner-b", ActorKind.USER, "console")
OWNER_A = Actor("owner-a", ActorKind.USER, "console")
ADMIN = Actor("secops", ActorKind.USER, "console")
STRANGER = Actor("mallory", ActorKind.USER, "console")
DEV = Actor("dev", ActorKind.USER, "console")


async def say(leash: Leash, text: str, actor: Actor) -> Reply:
    return await leash.handler.handle_text(text, actor=actor)


def iam_for(sandbox: Sandbox, name: str) -> Any:
    return account_iam(sandbox, sandbox.identity(name).account.name)


def role_state(sandbox: Sandbox, name: str) -> dict[str, Any]:
    """Everything about a role Leash could touch, as IAM returns it."""
    iam = iam_for(sandbox, name)
    role = dict(iam.get_role(RoleName=name)["Role"])
    role.pop("RoleLastUsed", None)
    policies = {
        policy: iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
    }
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    tags = iam.list_role_tags(RoleName=name)["Tags"]
    return {"role": role, "inline": policies, "attached": attached, "tags": tags}


def inline_policy_names(sandbox: Sandbox, role: str) -> list[str]:
    return list(iam_for(sandbox, role).list_role_policies(RoleName=role)["PolicyNames"])


def document(sandbox: Sandbox, role: str, policy: str) -> dict[str, Any] | None:
    iam = iam_for(sandbox, role)
    try:
        found = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
    except iam.exceptions.NoSuchEntityException:
        return None
    return dict(json.loads(found) if isinstance(found, str) else found)


def main_deny(guard: dict[str, Any]) -> dict[str, Any]:
    """The guardrail's unconditional deny, across every chunk it is split into."""
    actions = [
        action
        for statement in guard["Statement"]
        if statement["Sid"].startswith("LeashGuardrail")
        and not statement["Sid"].startswith("LeashGuardrailAfter")
        and "Condition" not in statement
        for action in statement["Action"]
    ]
    return {"Action": actions}


def guardrail_statements(sandbox: Sandbox, role: str) -> dict[str, Any]:
    """The guardrail's statements, inline or split into /leash/ managed policies."""
    iam = iam_for(sandbox, role)
    statements = [
        statement
        for found in role_documents(iam, role)
        for statement in found["Statement"]
        if str(statement.get("Sid", "")).startswith("LeashGuardrail")
    ]
    assert statements, f"no guardrail on {role}"
    return {"Statement": statements}


async def enforcements(leash: Leash, kind: str) -> list[Enforcement]:
    async with leash.context.sessions() as session:
        rows = await session.exec(select(Enforcement).where(col(Enforcement.kind) == kind))
        return list(rows.all())


async def audited(leash: Leash, event_type: str) -> list[AuditEvent]:
    async with leash.context.sessions() as session:
        rows = await session.exec(
            select(AuditEvent).where(col(AuditEvent.event_type) == event_type)
        )
        return list(rows.all())


async def chain_ok(leash: Leash) -> bool:
    async with leash.context.sessions() as session:
        return (await audit.verify(session=session)).ok


async def test_nightly_groups_findings_per_owner_and_stays_quiet_when_nothing_changed(
    leash: Leash, fresh_sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    report = await leash.lifecycle.least_privilege.nightly()
    assert report.scan.scanned > 10
    assert not report.scan.failures
    messages = notifier.of_kind(NoticeKind.SCAN_FINDINGS)
    assert sorted(m.recipients for m in messages) == [("owner-a",), ("owner-b",)]
    to_b = next(m for m in messages if m.recipients == ("owner-b",)).reply
    titles = [section.title for section in to_b.sections]
    assert {"code-review-agent", "data-pipeline-agent"} <= set(titles)
    review = next(s for s in to_b.sections if s.title == "code-review-agent")
    arn = fresh_sandbox.identity("code-review-agent").arn
    assert [c.command for c in review.choices] == [
        f"restrict {arn}",
        f"quarantine {arn} because nightly scan finding",
        f"keep {arn}",
        f"disown {arn}",
    ]
    assert any("Unused 1: iam:*" in line for line in review.lines)
    to_a = next(m for m in messages if m.recipients == ("owner-a",)).reply
    inactive = next(s for s in to_a.sections if s.title == "notebook-helper-agent")
    assert any(line.startswith("Inactive: last activity") for line in inactive.lines)

    await leash.lifecycle.least_privilege.nightly()
    assert len(notifier.of_kind(NoticeKind.SCAN_FINDINGS)) == 2  # nothing changed: silence

    # code-review-agent starts using IAM: its finding changes, so owner-b (only) hears again.
    fresh_sandbox.activity.record_use(
        arn, ServiceUse("iam", datetime.now(UTC), {"iam:ListRoles": datetime.now(UTC)})
    )
    await leash.lifecycle.least_privilege.nightly()
    latest = notifier.of_kind(NoticeKind.SCAN_FINDINGS)[2:]
    assert [m.recipients for m in latest] == [("owner-b",)]
    review = next(s for s in latest[0].reply.sections if s.title == "code-review-agent")
    assert not any("Unused 1: iam:*" in line for line in review.lines)
    assert any(line.startswith("Used") or "Unused" in line for line in review.lines)


async def test_restrict_previews_then_denies_exactly_the_unused_and_undo_restores(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    await leash.lifecycle.least_privilege.scanner.scan()
    before = role_state(fresh_sandbox, "code-review-agent")
    refused = await say(leash, "restrict code-review-agent", STRANGER)
    assert not refused.ok
    assert "owner" in refused.text
    preview = await say(leash, "restrict code-review-agent", OWNER_B)
    assert preview.ok, preview.text
    assert any(line.startswith("Deny (1, inline policy): iam:*") for line in preview.lines)
    assert document(fresh_sandbox, "code-review-agent", "leash-restrict") is None  # preview only
    (confirm,) = preview.choices
    done = await say(leash, confirm.command, OWNER_B)
    assert done.ok, done.text
    written = document(fresh_sandbox, "code-review-agent", "leash-restrict")
    assert written is not None
    (statement,) = written["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Deny", ["iam:*"])
    again = await say(leash, confirm.command, OWNER_B)
    assert not again.ok
    assert "already restricted" in again.text
    assert len(await enforcements(leash, "restrict")) == 1

    undone = await say(leash, "unrestrict code-review-agent", OWNER_B)
    assert undone.ok, undone.text
    assert role_state(fresh_sandbox, "code-review-agent") == before
    twice = await say(leash, "unrestrict code-review-agent", OWNER_B)
    assert not twice.ok
    assert "not restricted" in twice.text
    assert [e.event_type for e in await audited(leash, "restrict.applied")] == ["restrict.applied"]
    assert len(await audited(leash, "restrict.lifted")) == 1
    assert len(await audited(leash, "restrict.refused")) >= 1
    assert await chain_ok(leash)


async def test_a_change_between_preview_and_confirm_writes_nothing(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    await leash.lifecycle.least_privilege.scanner.scan()
    preview = await say(leash, "restrict code-review-agent", OWNER_B)
    iam_for(fresh_sandbox, "code-review-agent").put_role_policy(
        RoleName="code-review-agent",
        PolicyName="added-by-someone",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}],
            }
        ),
    )
    stale = await say(leash, preview.choices[0].command, OWNER_B)
    assert not stale.ok
    assert "changed since that preview" in stale.text
    assert stale.choices
    assert stale.choices[0].command != preview.choices[0].command
    assert "leash-restrict" not in inline_policy_names(fresh_sandbox, "code-review-agent")
    assert await enforcements(leash, "restrict") == []


async def test_quarantine_and_release_leave_the_role_byte_identical(
    leash: Leash, fresh_sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    before = role_state(fresh_sandbox, "notebook-helper-agent")
    refused = await say(leash, "quarantine notebook-helper-agent because zombie", STRANGER)
    assert not refused.ok
    assert "leash-quarantine" not in inline_policy_names(fresh_sandbox, "notebook-helper-agent")
    done = await say(leash, "quarantine notebook-helper-agent because zombie agent", ADMIN)
    assert done.ok, done.text
    deny = document(fresh_sandbox, "notebook-helper-agent", "leash-quarantine")
    assert deny is not None
    conditions = [s.get("Condition") for s in deny["Statement"]]
    assert any(c and "aws:TokenIssueTime" in c.get("DateLessThan", {}) for c in conditions)
    assert any(s["Action"] == "*" and "Condition" not in s for s in deny["Statement"])
    assert any(
        n.kind is NoticeKind.ENFORCEMENT and "owner-a" in n.recipients for n in notifier.notices
    )
    # A second press changes nothing; no access is granted to a quarantined agent.
    second = await say(leash, "quarantine notebook-helper-agent because zombie agent", OWNER_A)
    assert not second.ok
    assert "already quarantined" in second.text
    asked = await say(leash, "request notebook-helper-agent s3-read for 10m because need data", DEV)
    assert not asked.ok
    assert "quarantined" in asked.text

    # An admin placed it: the owner cannot lift it, an admin can.
    by_owner = await say(leash, "release notebook-helper-agent", OWNER_A)
    assert not by_owner.ok
    assert "only an admin can lift it" in by_owner.text
    released = await say(leash, "release notebook-helper-agent", ADMIN)
    assert released.ok, released.text
    # As before, but sessions issued before the quarantine stay denied (the only addition).
    after = role_state(fresh_sandbox, "notebook-helper-agent")
    lasting = after["inline"].pop("leash-revoked-sessions")
    assert after == before
    assert [s["Condition"] for s in lasting["Statement"]] == [
        {
            "DateLessThan": {
                "aws:TokenIssueTime": deny["Statement"][1]["Condition"]["DateLessThan"][
                    "aws:TokenIssueTime"
                ]
            }
        }
    ]
    again = await say(leash, "release notebook-helper-agent", ADMIN)
    assert not again.ok
    assert "not quarantined" in again.text
    rows = await enforcements(leash, "quarantine")
    assert [(row.state, row.active_key) for row in rows] == [("released", None)]
    assert len(await audited(leash, "quarantine.refused")) == 2
    assert len(await audited(leash, "release.refused")) == 2  # the owner's, and the second
    assert await chain_ok(leash)


async def test_a_privileged_grant_opens_a_self_expiring_exemption_and_revoke_closes_it(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    applied = await say(leash, "guardrail apply code-review-agent", ADMIN)
    assert applied.ok, applied.text
    guard = guardrail_statements(fresh_sandbox, "code-review-agent")
    main = main_deny(guard)
    assert "iam:PassRole" in main["Action"]
    assert "Condition" not in main

    asked = await say(
        leash, "request code-review-agent iam:PassRole for 10m because deploy the model", DEV
    )
    request_match = REQUEST_ID.search(asked.text)
    assert request_match, asked.text
    approved = await say(leash, f"approve {request_match.group(1)} ok", ADMIN)
    grant_match = GRANT_ID.search(approved.text)
    assert grant_match, approved.text
    active = await grant(leash, grant_match.group(1))
    guard = guardrail_statements(fresh_sandbox, "code-review-agent")
    main = main_deny(guard)
    assert "iam:PassRole" not in main["Action"]
    (exemption,) = [s for s in guard["Statement"] if s["Sid"].startswith("LeashGuardrailAfter")]
    assert exemption["Effect"] == "Deny"
    assert exemption["Action"] == ["iam:PassRole"]
    assert exemption["Condition"] == {
        "DateGreaterThan": {"aws:CurrentTime": aws_timestamp(active.expires_at)}
    }

    revoked = await say(leash, f"revoke {active.id}", DEV)
    assert revoked.ok, revoked.text
    guard = guardrail_statements(fresh_sandbox, "code-review-agent")
    main = main_deny(guard)
    assert "iam:PassRole" in main["Action"]
    assert not [s for s in guard["Statement"] if s["Sid"].startswith("LeashGuardrailAfter")]


@pytest.mark.parametrize(
    "rules",
    [{"least_privilege": {"enforcement": "report", "guardrail": "report"}}],
    indirect=True,
)
async def test_report_only_mode_shows_and_audits_but_writes_nothing(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    before = role_state(fresh_sandbox, "code-review-agent")
    report = await leash.lifecycle.least_privilege.nightly()
    assert "code-review-agent" in report.guardrails.reported
    assert report.guardrails.written == ()
    preview = await say(leash, "restrict code-review-agent", OWNER_B)
    assert "Report-only" in preview.lines[-1]
    confirmed = await say(leash, preview.choices[0].command, OWNER_B)
    assert confirmed.ok
    assert "Nothing was written" in confirmed.text
    quarantined = await say(leash, "quarantine code-review-agent because test", OWNER_B)
    assert "Nothing was written" in quarantined.text
    assert role_state(fresh_sandbox, "code-review-agent") == before
    assert {row.state for row in await enforcements(leash, "restrict")} == {"reported"}
    assert len(await audited(leash, "restrict.reported")) == 1
    assert len(await audited(leash, "quarantine.reported")) == 1
    assert len(await audited(leash, "guardrail.reported")) >= 10
    await leash.lifecycle.least_privilege.nightly()  # reported once, not every night
    assert len(await audited(leash, "guardrail.reported")) == len(report.guardrails.reported)


async def test_unknown_usage_is_shown_and_never_restricted(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    fresh_sandbox.activity.fail_jobs(fresh_sandbox.identity("code-review-agent").arn)
    await leash.lifecycle.least_privilege.scanner.scan()
    shown = await say(leash, "unused code-review-agent", OWNER_B)
    assert any("Usage unknown" in line for line in shown.lines)
    assert "restrict" not in [c.command.split()[0] for c in shown.choices]
    refused = await say(leash, "restrict code-review-agent", OWNER_B)
    assert not refused.ok
    assert "unknown" in refused.text
    assert "leash-restrict" not in inline_policy_names(fresh_sandbox, "code-review-agent")


@pytest.mark.parametrize(
    "rules",
    [{"least_privilege": {"auto_quarantine_after": "100d", "owner_answer_within": "1s"}}],
    indirect=True,
)
async def test_an_inactive_agent_whose_owner_stays_silent_is_quarantined(
    leash: Leash, fresh_sandbox: Sandbox
) -> None:
    lp = leash.lifecycle.least_privilege
    first = await lp.nightly()
    assert first.auto_quarantined == 0  # the owner has just been told
    await asyncio.sleep(1.2)
    second = await lp.nightly()
    assert second.auto_quarantined == 1
    assert "leash-quarantine" in inline_policy_names(fresh_sandbox, "notebook-helper-agent")
    (row,) = await enforcements(leash, "quarantine")
    assert row.created_by == "leash"
    assert "did not answer" in (row.reason or "")


@pytest.mark.parametrize(
    "rules",
    [{"least_privilege": {"auto_quarantine_after": "100d", "owner_answer_within": "1s"}}],
    indirect=True,
)
async def test_an_owner_who_keeps_the_agent_prevents_auto_quarantine(
    leash: Leash, fresh_sandbox: Sandbox, notifier: RecordingNotifier
) -> None:
    lp = leash.lifecycle.least_privilege
    await lp.nightly()
    kept = await say(leash, "keep notebook-helper-agent", OWNER_A)
    assert kept.ok, kept.text
    await asyncio.sleep(1.2)
    assert (await lp.nightly()).auto_quarantined == 0
    assert "leash-quarantine" not in inline_policy_names(fresh_sandbox, "notebook-helper-agent")
    stranger = await say(leash, "keep notebook-helper-agent", STRANGER)
    assert not stranger.ok


async def test_not_mine_makes_the_agent_unowned_and_alerts_security(
    leash: Leash, notifier: RecordingNotifier
) -> None:
    said = await say(leash, "disown code-review-agent", OWNER_B)
    assert said.ok
    assert "no owner" in said.text
    alerts = [
        n for n in notifier.of_kind(NoticeKind.UNOWNED) if "code-review-agent" in n.reply.text
    ]
    assert ("secops",) in [alert.recipients for alert in alerts]
    refused = await say(leash, "disown support-triage-agent", OWNER_B)
    assert not refused.ok
