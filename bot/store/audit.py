"""Hash-chained audit events, keyed with LEASH_AUDIT_KEY: append, verify, export, head."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.actors import SYSTEM, Actor
from bot.domain.states import Outcome
from bot.store.fencing import current_epoch
from bot.store.tables import AuditEvent

log = logging.getLogger("leash.audit")

__all__ = ["SYSTEM", "Actor"]  # re-exported: most callers import them from bot.store.audit

GENESIS_HASH = "0" * 64
# Serialises appends on PostgreSQL so two transactions never chain to the same head (a
# replica that cannot take it cannot record anything: /readyz tries it).
CHAIN_LOCK_KEY = 0x1EA5_0A0D
# Ends the unkeyed events a database recorded before the chain was keyed; itself keyed.
KEYED_EVENT = "audit.keyed"
KEY_MIN_LENGTH = 32
# Where the session factory keeps the key (see `hand_key_to`): every append reads it there.
_KEY_INFO = "leash.audit_key"
_HEAD = re.compile(r"([1-9][0-9]*):([0-9a-f]{64})")


class AuditKeyMissingError(RuntimeError):
    """A session that was not handed the audit key tried to append to or verify the chain."""


@dataclass(frozen=True, slots=True)
class AuditKey:
    """The secret the chain is keyed with (HMAC-SHA256); it never lives in the database."""

    secret: bytes = field(repr=False)

    @classmethod
    def of(cls, value: str) -> AuditKey:
        if len(value) < KEY_MIN_LENGTH:
            raise ValueError(f"an audit key needs at least {KEY_MIN_LENGTH} characters")
        return cls(value.encode())

    def sign(self, event: AuditEvent) -> str:
        """Return the HMAC-SHA256 of the event's canonical JSON (64 hex characters)."""
        return hmac.new(self.secret, _canonical(event), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Head:
    """The newest event's sequence number and hash: published outside the database."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, value: str) -> Head:
        """Read `seq:hash` (as `leash audit export` prints it)."""
        match = _HEAD.fullmatch(value.strip())
        if match is None:
            raise ValueError("write the head as <seq>:<64 hex characters>, e.g. 12:ab12…")
        return cls(int(match.group(1)), match.group(2))


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int
    broken_seq: int | None = None
    problem: str | None = None
    # The chain's own newest event, as verified (None for an empty chain).
    head: Head | None = None


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


def _canonical(event: AuditEvent) -> bytes:
    return json.dumps(_payload(event), sort_keys=True, separators=(",", ":"), default=str).encode()


def unkeyed_hash(event: AuditEvent) -> str:
    """Return the plain SHA-256 of the canonical JSON: how events were hashed before keys."""
    return hashlib.sha256(_canonical(event)).hexdigest()


def hand_key_to(sessions: async_sessionmaker[AsyncSession], key: AuditKey) -> None:
    """Give every session `sessions` opens the chain's key (the composition root calls this)."""
    sessions.configure(info={**sessions.kw.get("info", {}), _KEY_INFO: key})


def _key(session: AsyncSession) -> AuditKey:
    key = session.info.get(_KEY_INFO)
    if not isinstance(key, AuditKey):
        raise AuditKeyMissingError("this session was not handed the audit key (hand_key_to)")
    return key


async def lock_chain(session: AsyncSession) -> None:
    """Hold the chain's append lock until the transaction ends (PostgreSQL; SQLite's writers
    are serialised by BEGIN IMMEDIATE already)."""
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        await session.exec(
            text("SELECT pg_advisory_xact_lock(:key)").bindparams(key=CHAIN_LOCK_KEY)
        )  # type: ignore[call-overload]


async def _newest(session: AsyncSession) -> AuditEvent | None:
    query = select(AuditEvent).order_by(col(AuditEvent.seq).desc()).limit(1)
    return (await session.exec(query)).first()


def _leader_epoch() -> dict[str, int]:
    """Scheduler work on PostgreSQL records the leader epoch it ran under (`bot.store.fencing`)."""
    epoch = current_epoch()
    return {"leader_epoch": epoch} if epoch else {}


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
    key = _key(session)
    await lock_chain(session)
    head = await _newest(session)
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
        detail={**(detail or {}), **_leader_epoch()},
        prev_hash=head.hash if head else GENESIS_HASH,
        hash="",
    )
    event.hash = key.sign(event)
    session.add(event)
    await session.flush()
    return event


async def seal(*, session: AsyncSession, at: datetime) -> AuditEvent | None:
    """Key a chain recorded before LEASH_AUDIT_KEY: append the keyed `audit.keyed` marker.

    Unkeyed events are accepted by `verify` only before that marker, so nobody without the key
    can re-hash later events the old way. Does nothing when the newest event is keyed already.
    """
    key = _key(session)
    await lock_chain(session)
    head = await _newest(session)
    if head is None or hmac.compare_digest(key.sign(head), head.hash):
        return None
    if not hmac.compare_digest(unkeyed_hash(head), head.hash):
        log.warning(
            "the newest audit event (%d) matches neither the audit key nor the unkeyed hash: "
            "the key changed or the chain was altered; run `leash audit verify`",
            head.seq,
        )
        return None
    log.warning("keying the audit chain after %d unkeyed event(s)", head.seq)
    return await append(
        session=session,
        actor=SYSTEM,
        event_type=KEYED_EVENT,
        at=at,
        detail={"unkeyed_events": head.seq, "unkeyed_head": head.hash},
    )


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


async def head(*, session: AsyncSession) -> Head | None:
    """Return the newest event's sequence number and hash (None for an empty chain)."""
    newest = await _newest(session)
    return Head(newest.seq or 0, newest.hash) if newest is not None else None


def publish_head(newest: Head | None, *, via: str) -> None:
    """Log the head as one structured line, so a copy of it lives outside the database."""
    log.info(
        "audit head: %s (%s)",
        newest if newest is not None else "0 (empty chain)",
        via,
        extra={
            "audit_head_seq": newest.seq if newest is not None else 0,
            "audit_head_hash": newest.hash if newest is not None else None,
            "audit_head_via": via,
        },
    )


def _hash_problem(event: AuditEvent, *, key: AuditKey, keyed: bool, first: bool) -> str | None:
    """Why this event's own hash is wrong, or None; `keyed`: a keyed event came before."""
    if hmac.compare_digest(key.sign(event), event.hash):
        if not keyed and not first and event.event_type != KEYED_EVENT:
            return f"it is keyed, but the unkeyed events before it end without {KEYED_EVENT}"
        return None
    if hmac.compare_digest(unkeyed_hash(event), event.hash):
        if keyed:
            return "it was hashed without the audit key after the chain was keyed (re-hashed)"
        return None  # recorded before the chain was keyed: the keyed marker pins these
    return "its content was changed (or it was hashed with another key)"


async def verify(
    *, session: AsyncSession, key: AuditKey | None = None, published: Head | None = None
) -> VerifyResult:
    """Recompute the chain; name the first event whose content or link is wrong.

    With `published` (a head seen earlier outside the database), also name events cut off the
    end and a chain re-hashed before that head, even by someone holding the key.
    """
    key = key or _key(session)
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    keyed = False
    at_published: str | None = None
    async for event in events(session=session):
        seq = event.seq or 0
        if seq != expected_seq:
            return VerifyResult(
                False, checked, expected_seq, f"it is missing (the next event is {seq})"
            )
        if event.prev_hash != expected_prev:
            return VerifyResult(
                False, checked, seq, "its link to the previous event does not match"
            )
        problem = _hash_problem(event, key=key, keyed=keyed, first=checked == 0)
        if problem is not None:
            return VerifyResult(False, checked, seq, problem)
        # An unkeyed event is accepted only while no keyed one came before it.
        keyed = keyed or not hmac.compare_digest(unkeyed_hash(event), event.hash)
        if published is not None and seq == published.seq:
            at_published = event.hash
        expected_prev = event.hash
        expected_seq += 1
        checked += 1
    newest = Head(checked, expected_prev) if checked else None
    if checked and not keyed:
        return VerifyResult(
            False,
            checked,
            None,
            f"no event is keyed: start Leash once with the audit key to seal events recorded "
            f"before keying ({KEYED_EVENT}), or all {checked} were re-hashed without the key",
            newest,
        )
    if published is None:
        return VerifyResult(True, checked, head=newest)
    return _against(published, checked=checked, at_published=at_published, newest=newest)


def _against(
    published: Head, *, checked: int, at_published: str | None, newest: Head | None
) -> VerifyResult:
    """Compare an intact chain with a head published earlier."""
    if at_published is None:
        missing = (
            f"event {published.seq} is missing"
            if published.seq == checked + 1
            else f"events {checked + 1} to {published.seq} are missing"
        )
        return VerifyResult(
            False,
            checked,
            checked + 1,
            f"{missing}: the chain ends at event {checked} but the head published earlier is "
            f"{published} (the newest events were removed)",
            newest,
        )
    if not hmac.compare_digest(at_published, published.hash):
        return VerifyResult(
            False,
            checked,
            published.seq,
            f"its hash is {at_published[:12]}…, not {published.hash[:12]}… as published earlier: "
            f"the chain was rewritten at or before event {published.seq}",
            newest,
        )
    return VerifyResult(True, checked, head=newest)


def to_json_line(event: AuditEvent) -> str:
    """Render one event as a JSON line for export (SIEM-friendly)."""
    record = _payload(event) | {"hash": event.hash}
    return json.dumps(record, sort_keys=True, default=str)
