"""A request names AWS actions as AWS publishes them: a misspelt one is refused with a hint."""

from __future__ import annotations

from sqlmodel import col, select

from bot.app import Leash
from bot.domain.actors import Actor
from bot.domain.states import ActorKind, Outcome
from bot.store.tables import AccessRequest, AuditEvent


def _dev() -> Actor:
    return Actor("dev", ActorKind.USER, "console")


async def _stored(leash: Leash) -> tuple[list[AccessRequest], list[AuditEvent]]:
    async with leash.context.sessions() as session:
        requests = list((await session.exec(select(AccessRequest))).all())
        refused = list(
            (
                await session.exec(
                    select(AuditEvent).where(
                        col(AuditEvent.event_type) == "request.refused",
                        col(AuditEvent.outcome) == Outcome.FAILURE,
                    )
                )
            ).all()
        )
    return requests, refused


async def test_misspelt_action_is_refused_with_a_suggestion_stored_nowhere_and_audited(
    leash: Leash,
) -> None:
    before, refused_before = await _stored(leash)
    reply = await leash.handler.handle_text(
        "request support-triage-agent s3:GetObjcet for 10m because x", actor=_dev()
    )
    after, refused_after = await _stored(leash)
    assert not reply.ok
    assert "s3:GetObjcet" in reply.text
    assert "Did you mean s3:GetObject?" in reply.text
    assert [r.id for r in after] == [r.id for r in before]
    assert len(refused_after) == len(refused_before) + 1
    assert refused_after[-1].actor == "dev"


async def test_real_action_in_any_case_is_stored_as_aws_spells_it(leash: Leash) -> None:
    reply = await leash.handler.handle_text(
        "request support-triage-agent S3:getobject for 10m because tickets", actor=_dev()
    )
    assert reply.ok, reply.text
    requests, _ = await _stored(leash)
    assert [r.actions for r in requests] == [["s3:GetObject"]]


async def test_wildcard_is_tiered_by_what_it_covers(leash: Leash) -> None:
    reply = await leash.handler.handle_text(
        "request support-triage-agent codebuild:Update* for 10m because ci", actor=_dev()
    )
    assert reply.ok, reply.text
    requests, _ = await _stored(leash)
    assert [(r.actions, r.tier) for r in requests] == [(["codebuild:Update*"], "escalation")]
