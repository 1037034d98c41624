"""The states of requests, grants and enforcements, and the other enums the domain decides on."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol


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
