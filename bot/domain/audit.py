"""Hash-chained audit events: append, verify, export."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.actors import SYSTEM, Actor
from bot.domain.models import AuditEvent, Outcome

__all__ = ["SYSTEM", "Actor"]  # re-exported: most callers import them from bot.domain.audit

GENESIS_HASH = "0" * 64
# Serialises appends on PostgreSQL so two transactions never chain to the same head.
_AUDIT_LOCK_KEY = 0x1EA5_0A0D


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    broken_seq: int | None = None
    problem: str | None = None


def _iso(value: datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")


def _payload(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": _iso(event.at),
        "actor": event.actor,
        "actor_kind": event.actor_kind,
        "event_type": event.event_type,
        "outcome": event.outcome,
        "origin": event.origin,
        "identity_id": event.identity_id,
        "resource": event.resource,
        "request_id": event.request_id,
        "grant_id": event.grant_id,
        "detail": event.detail,
        "prev_hash": event.prev_hash,
    }


def event_hash(event: AuditEvent) -> str:
    """Return the SHA-256 of the event's canonical JSON (everything but its own hash)."""
    canonical = json.dumps(_payload(event), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _lock_chain(session: AsyncSession) -> None:
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        await session.exec(
            text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=_AUDIT_LOCK_KEY)
        )  # type: ignore[call-overload]


async def append(
    *,
    session: AsyncSession,
    actor: Actor,
    event_type: str,
    at: datetime,
    outcome: Outcome = Outcome.SUCCESS,
    identity_id: str | None = None,
    resource: str | None = None,
    request_id: str | None = None,
    grant_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one event at the head of the chain inside the caller's transaction."""
    await _lock_chain(session)
    head = (
        await session.exec(select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(1))
    ).first()
    event = AuditEvent(
        seq=(head.seq or 0) + 1 if head else 1,
        at=at,
        actor=actor.name,
        actor_kind=actor.kind,
        event_type=event_type,
        outcome=outcome,
        origin=actor.origin,
        identity_id=identity_id,
        resource=resource,
        request_id=request_id,
        grant_id=grant_id,
        detail=dict(detail or {}),
        prev_hash=head.hash if head else GENESIS_HASH,
        hash="",
    )
    event.hash = event_hash(event)
    session.add(event)
    await session.flush()
    return event


async def events(
    *, session: AsyncSession, batch: int = 500, after_seq: int = 0
) -> AsyncIterator[AuditEvent]:
    """Yield every event after `after_seq` (all by default) in chain order, in batches."""
    last = after_seq
    while True:
        rows = (
            await session.exec(
                select(AuditEvent)
                .where(col(AuditEvent.seq) > last)
                .order_by(col(AuditEvent.seq))
                .limit(batch)
            )
        ).all()
        if not rows:
            return
        for row in rows:
            yield row
        last = rows[-1].seq or last


async def verify(*, session: AsyncSession) -> VerifyResult:
    """Recompute the chain; name the first event whose content or link is wrong."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    async for event in events(session=session):
        if event.seq != expected_seq:
            return VerifyResult(
                False, checked, expected_seq, f"it is missing (the next event is {event.seq})"
            )
        if event.prev_hash != expected_prev:
            return VerifyResult(
                False, checked, event.seq, "its link to the previous event does not match"
            )
        if event_hash(event) != event.hash:
            return VerifyResult(False, checked, event.seq, "its content was changed")
        expected_prev = event.hash
        expected_seq += 1
        checked += 1
    return VerifyResult(True, checked)


def to_json_line(event: AuditEvent) -> str:
    """Render one event as a JSON line for export (SIEM-friendly)."""
    record = _payload(event) | {"hash": event.hash}
    return json.dumps(record, sort_keys=True, default=str)
