"""The states of requests, grants and enforcements, and the other enums the domain decides on."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from bot.domain.errors import IllegalTransitionError


class Classification(StrEnum):
    AI_AGENT = "ai_agent"
    WORKLOAD = "workload"
    UNKNOWN = "unknown"


class Tier(StrEnum):
    NORMAL = "normal"
    PRIVILEGED = "privileged"
    ESCALATION = "escalation"
    BREAK_GLASS = "break_glass"


class ActorKind(StrEnum):
    USER = "user"
    AGENT = "agent"
    SYSTEM = "system"


class RequestState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class GrantState(StrEnum):
    APPLYING = "applying"
    ACTIVE = "active"
    REVOKING = "revoking"
    REVOKED = "revoked"
    REVOKE_FAILED = "revoke_failed"
    IRREVOCABLE = "irrevocable"
    FAILED = "failed"


LIVE_GRANT_STATES = (
    GrantState.APPLYING,
    GrantState.ACTIVE,
    GrantState.REVOKING,
    GrantState.REVOKE_FAILED,
    GrantState.IRREVOCABLE,
)


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


OVERDUE = "overdue"


class _Dated(Protocol):
    @property
    def state(self) -> str: ...

    @property
    def expires_at(self) -> datetime: ...


def shown_state(grant: _Dated, *, now: datetime) -> str:
    """The state to show for a grant: `overdue` once an active grant is past its expiry.

    Its revocation is then due but not yet recorded (the leader is still revoking it, or
    starting up): it must never read as `active`.
    """
    if grant.state == GrantState.ACTIVE and grant.expires_at <= now:
        return OVERDUE
    return grant.state


class EnforcementKind(StrEnum):
    RESTRICT = "restrict"
    QUARANTINE = "quarantine"
    GUARDRAIL = "guardrail"


class EnforcementState(StrEnum):
    APPLYING = "applying"
    ACTIVE = "active"
    REPORTED = "reported"  # report-only mode: computed, shown and audited, not written
    RELEASED = "released"
    FAILED = "failed"


class Machine(StrEnum):
    """The records whose state only ever moves along the transition table below."""

    REQUEST = "request"
    GRANT = "grant"
    ENFORCEMENT = "enforcement"


# Every legal (from, to) move, as the lifecycle makes them. A move to the same state is a
# compare-and-set that keeps the state and changes other columns under its guard: a claim
# (`lease_until`), a counter, or a grant's rewritten denies. Final states have no move out.
REQUEST_MOVES: frozenset[tuple[RequestState, RequestState]] = frozenset(
    {
        (RequestState.PENDING, RequestState.PENDING),  # a reminder or an escalation
        (RequestState.PENDING, RequestState.APPROVED),  # the last approval needed
        (RequestState.PENDING, RequestState.DENIED),
        (RequestState.PENDING, RequestState.CANCELLED),  # withdrawn by its requester
        (RequestState.PENDING, RequestState.EXPIRED),  # nobody decided in time
    }
)

GRANT_MOVES: frozenset[tuple[GrantState, GrantState]] = frozenset(
    {
        # The sweep takes over an apply whose lease ran out; the apply records its denies.
        (GrantState.APPLYING, GrantState.APPLYING),
        (GrantState.APPLYING, GrantState.ACTIVE),  # written to the cloud (or adopted)
        (GrantState.APPLYING, GrantState.FAILED),  # the cloud refused the write
        # An extension claims, records and releases; a recomposition rewrites the denies.
        (GrantState.ACTIVE, GrantState.ACTIVE),
        # A revocation claims the grant: by hand, at expiry, or a retry of a failed one.
        (GrantState.ACTIVE, GrantState.REVOKING),
        (GrantState.REVOKE_FAILED, GrantState.REVOKING),
        (GrantState.IRREVOCABLE, GrantState.REVOKING),
        (GrantState.REVOKING, GrantState.REVOKING),  # a revocation whose lease ran out
        (GrantState.REVOKING, GrantState.REVOKED),
        (GrantState.REVOKING, GrantState.REVOKE_FAILED),  # retried with backoff
        (GrantState.REVOKING, GrantState.IRREVOCABLE),  # out of attempts: admins alerted
    }
)

ENFORCEMENT_MOVES: frozenset[tuple[EnforcementState, EnforcementState]] = frozenset(
    {
        (EnforcementState.APPLYING, EnforcementState.ACTIVE),
        (EnforcementState.APPLYING, EnforcementState.FAILED),  # nothing was written
        (EnforcementState.ACTIVE, EnforcementState.RELEASED),
    }
)

MOVES: Mapping[Machine, frozenset[tuple[str, str]]] = {
    Machine.REQUEST: frozenset(REQUEST_MOVES),
    Machine.GRANT: frozenset(GRANT_MOVES),
    Machine.ENFORCEMENT: frozenset(ENFORCEMENT_MOVES),
}

# The state each record is created in (a report-only enforcement is created reported).
INITIAL: Mapping[Machine, frozenset[str]] = {
    Machine.REQUEST: frozenset({RequestState.PENDING}),
    Machine.GRANT: frozenset({GrantState.APPLYING}),
    Machine.ENFORCEMENT: frozenset({EnforcementState.APPLYING, EnforcementState.REPORTED}),
}


def is_legal(kind: Machine, from_state: str, to_state: str) -> bool:
    return (from_state, to_state) in MOVES[kind]


def check_move(kind: Machine, from_state: str, to_state: str) -> None:
    """Raise IllegalTransitionError unless `kind` may move from `from_state` to `to_state`."""
    if not is_legal(kind, from_state, to_state):
        raise IllegalTransitionError(
            f"A {kind} cannot move from {from_state} to {to_state}.", field="state"
        )


def check_start(kind: Machine, state: str) -> None:
    """Raise IllegalTransitionError unless a new `kind` may be created in `state`."""
    if state not in INITIAL[kind]:
        raise IllegalTransitionError(f"A {kind} cannot start {state}.", field="state")


def sources(kind: Machine, to_state: str) -> frozenset[str]:
    """Every state from which `kind` may move to `to_state`."""
    return frozenset(start for start, end in MOVES[kind] if end == to_state)


def is_final(kind: Machine, state: str) -> bool:
    """No move leaves this state."""
    return all(start != state for start, _ in MOVES[kind])
