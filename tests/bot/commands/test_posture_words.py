"""Replies name things in words: how a grant ends, how a guardrail is held, what to do next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.app import Leash
from bot.commands import render
from bot.core import notices
from bot.domain.actors import Actor
from bot.domain.states import ActorKind
from bot.posture.restriction import RestrictionPreview
from bot.store.tables import Grant, Identity, UsageScan
from cloud.base import IdentityKind, IdentityRef, RestrictionPlan

ADMIN = Actor("secops", ActorKind.USER, "console")


def test_a_grant_says_how_it_ends_in_words() -> None:
    now = datetime.now(UTC)
    grant = Grant(
        id="g-1",
        request_id="r-1",
        identity_id="i-1",
        requester="dev",
        actions=["s3:GetObject"],
        created_at=now,
        expires_at=now + timedelta(hours=1),
        artefact="leash-grant-g-1",
        mechanism="aws-inline-policy-with-DateLessThan",
    )
    identity = Identity(
        id="i-1",
        provider="aws",
        account="1",
        native_id="arn",
        name="support-triage-agent",
        kind="role",
        discovered_at=now,
    )
    lines = notices.grant_active(grant, identity, ()).reply.lines
    assert (
        "How it ends: AWS ends it by itself (a policy condition on the time); "
        "written as leash-grant-g-1"
    ) in lines
    assert not any("DateLessThan" in line or "Enforced by" in line for line in lines)


async def test_guardrail_show_says_how_to_apply_a_missing_guardrail(leash: Leash) -> None:
    shown = await leash.handler.handle_text("guardrail show code-review-agent", actor=ADMIN)
    assert shown.ok, shown.text
    # 292 actions: too many for the inline budget, so AWS holds it in managed policies.
    assert "to be held as 2 customer-managed deny policies" in shown.lines[0]
    assert shown.lines[1:] == (
        "The cloud does not hold this guardrail yet.",
        "To write it now: `guardrail apply code-review-agent` (admins); "
        "the nightly run writes it too.",
    )
    applied = await leash.handler.handle_text("guardrail apply code-review-agent", actor=ADMIN)
    assert applied.ok, applied.text
    again = await leash.handler.handle_text("guardrail show code-review-agent", actor=ADMIN)
    assert again.lines[0].startswith("Guardrail: enforced")
    assert len(again.lines) == 1  # held as it should be: nothing to do


@pytest.mark.parametrize(
    "rules", [{"least_privilege": {"guardrail": "report"}}], indirect=True, ids=["report"]
)
async def test_in_report_mode_guardrail_show_names_the_setting_to_change(leash: Leash) -> None:
    shown = await leash.handler.handle_text("guardrail show code-review-agent", actor=ADMIN)
    assert shown.lines[-1] == (
        'The policy file\'s least_privilege.guardrail is "report", so Leash writes no '
        'guardrail: set it to "enforce", then `guardrail apply code-review-agent` (admins), '
        "or wait for the nightly run."
    )


@pytest.mark.parametrize(
    ("mechanism", "words"),
    [
        ("inline", "Deny (2, inline policy): "),
        (
            "gcp-remove-bindings+gcp-deny-policy",
            "Deny (2, role bindings removed and IAM deny policy): ",
        ),
        ("azure-remove-role-assignments", "Deny (2, role assignments removed): "),
    ],
)
def test_a_restriction_preview_says_how_it_restricts_in_words(mechanism: str, words: str) -> None:
    now = datetime.now(UTC)
    identity = Identity(
        id="i-1",
        provider="gcp",
        account="p",
        native_id="sa@p.iam.gserviceaccount.com",
        name="triage",
        kind="service_account",
        discovered_at=now,
    )
    ref = IdentityRef("gcp", "p", identity.native_id, "triage", IdentityKind.SERVICE_ACCOUNT)
    plan = RestrictionPlan(ref, ("a.b.c", "d.e.f"), mechanism, "{}", "fp")
    scan = UsageScan(identity_id="i-1", scanned_at=now, status="complete")
    preview = RestrictionPreview(identity, scan, plan, report_only=False)
    (deny, *_) = render.restriction_preview(preview).lines
    assert deny.startswith(words)
