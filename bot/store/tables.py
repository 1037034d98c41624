"""The ORM tables (SQLModel) Leash stores its state in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.domain.states import (
    Classification,
    GrantState,
    RequestState,
)


class Identity(SQLModel, table=True):
    """A non-human identity in a cloud: an agent or another workload."""

    id: str = Field(primary_key=True, max_length=40)
    provider: str = Field(index=True, max_length=16)
    account: str = Field(index=True, max_length=64)
    native_id: str = Field(unique=True, max_length=512)
    name: str = Field(index=True, max_length=256)
    kind: str = Field(max_length=32)
    classification: str = Field(default=Classification.UNKNOWN, max_length=16)
    classification_reason: str = Field(default="", max_length=512)
    tags: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    discovered_at: datetime
    present: bool = True
    deleted_at: datetime | None = None
    created_by: str | None = Field(default=None, max_length=512)
    granted_by: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    attached_policies: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    inline_policies: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # What the last unowned alert was about; a new alert only when this changes.
    unowned_alert_key: str | None = Field(default=None, max_length=64)
    # Least privilege: an owner's "keep" silences findings until then; when the owner was
    # told the identity is inactive, and when they last answered a finding.
    keep_until: datetime | None = None
    inactive_notified_at: datetime | None = None
    owner_answered_at: datetime | None = None


class Ownership(SQLModel, table=True):
    """Who answers for an identity."""

    identity_id: str = Field(primary_key=True, foreign_key="identity.id", max_length=40)
    primary_owner: str | None = Field(default=None, index=True, max_length=256)
    backup_owner: str | None = Field(default=None, index=True, max_length=256)
    team: str | None = Field(default=None, max_length=128)
    purpose: str | None = Field(default=None, max_length=512)
    source: str = Field(default="chat", max_length=16)
    updated_at: datetime
    updated_by: str = Field(max_length=256)
    attested_at: datetime | None = None
    attested_by: str | None = Field(default=None, max_length=256)
    attestation_asked_at: datetime | None = None
    # A claim by someone who is not an admin: listed, but without an owner's authority
    # (no approvals, no tokens, no undoing) until an admin confirms it.
    proposed_owner: str | None = Field(default=None, max_length=256)
    proposed_at: datetime | None = None


class AccessRequest(SQLModel, table=True):
    """A request to elevate one identity for a limited time."""

    id: str = Field(primary_key=True, max_length=16)
    identity_id: str = Field(foreign_key="identity.id", index=True, max_length=40)
    requester: str = Field(index=True, max_length=256)
    requester_kind: str = Field(max_length=16)
    # Every canonical handle of the requester's person when they asked (bot.domain.handles).
    requester_handles: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    origin: str = Field(max_length=32)
    permission_set: str | None = Field(default=None, max_length=128)
    actions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    resources: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    duration_seconds: int
    reason: str = Field(max_length=1000)
    tier: str = Field(max_length=16)
    approvals_required: int = 1
    approvers: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    decision_reasons: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    extends_grant_id: str | None = Field(default=None, max_length=16)
    state: str = Field(default=RequestState.PENDING, index=True, max_length=16)
    created_at: datetime
    decide_by: datetime = Field(index=True)
    decided_at: datetime | None = None
    decided_by: str | None = Field(default=None, max_length=256)
    decision_note: str | None = Field(default=None, max_length=1000)
    reminders_sent: int = 0
    escalation_level: int = 0
    last_nudge_at: datetime | None = None


class Approval(SQLModel, table=True):
    """One approver's yes on a request (break-glass needs two distinct ones)."""

    __table_args__ = (
        UniqueConstraint("request_id", "approver"),
        UniqueConstraint("request_id", "approver_person"),
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(foreign_key="accessrequest.id", index=True, max_length=16)
    approver: str = Field(max_length=256)
    # The approver's person (one per human, whatever surface they clicked on): the database
    # itself refuses a second approval of one request by the same person.
    approver_person: str | None = Field(default=None, max_length=40)
    approver_handles: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    note: str | None = Field(default=None, max_length=1000)
    created_at: datetime


class Grant(SQLModel, table=True):
    """A permission applied in the cloud, and how far its removal has got."""

    id: str = Field(primary_key=True, max_length=16)
    request_id: str = Field(foreign_key="accessrequest.id", unique=True, max_length=16)
    identity_id: str = Field(foreign_key="identity.id", index=True, max_length=40)
    requester: str = Field(max_length=256)
    actions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    resources: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    deny_actions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    state: str = Field(default=GrantState.APPLYING, index=True, max_length=16)
    created_at: datetime
    expires_at: datetime = Field(index=True)
    applied_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = Field(default=None, max_length=256)
    artefact: str | None = Field(default=None, max_length=256)
    mechanism: str | None = Field(default=None, max_length=128)
    lease_until: datetime | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, index=True)
    last_error: str | None = Field(default=None, max_length=2000)
    expiry_warned: bool = False
    extensions: int = 0


class AuditEvent(SQLModel, table=True):
    """One hash-chained audit record (PCI DSS 10.2.2 fields)."""

    seq: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    actor: str = Field(max_length=256)
    actor_kind: str = Field(max_length=16)
    event_type: str = Field(index=True, max_length=64)
    outcome: str = Field(max_length=16)
    origin: str = Field(max_length=32)
    identity_id: str | None = Field(default=None, index=True, max_length=40)
    resource: str | None = Field(default=None, max_length=512)
    request_id: str | None = Field(default=None, index=True, max_length=16)
    grant_id: str | None = Field(default=None, index=True, max_length=16)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(unique=True, max_length=64)


class AgentToken(SQLModel, table=True):
    """An API token bound to exactly one identity; only its hash is stored."""

    id: str = Field(primary_key=True, max_length=16)
    identity_id: str = Field(foreign_key="identity.id", index=True, max_length=40)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime
    created_by: str = Field(max_length=256)
    revoked_at: datetime | None = None
    revoked_by: str | None = Field(default=None, max_length=256)
    # A token is worth something only while it is young enough and the identity is still
    # owned by whom it was when the token was issued (an owner change ends it).
    expires_at: datetime | None = None
    owner_at_issue: str | None = Field(default=None, max_length=256)


class Person(SQLModel, table=True):
    """One human, whatever surface they talk to Leash on."""

    id: str = Field(primary_key=True, max_length=40)
    display: str = Field(max_length=256)
    created_at: datetime


class PersonHandle(SQLModel, table=True):
    """One handle of a person (`email:…`, `slack:…`, `teams:…`, `entra:…`, `name:…`)."""

    key: str = Field(primary_key=True, max_length=320)
    person_id: str = Field(foreign_key="person.id", index=True, max_length=40)
    seen_at: datetime


class ChatMessage(SQLModel, table=True):
    """A message Leash posted about a request or grant, so every copy can be updated later."""

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    request_id: str | None = Field(default=None, index=True, max_length=16)
    grant_id: str | None = Field(default=None, index=True, max_length=16)
    kind: str = Field(max_length=32)
    channel: str = Field(max_length=256)
    ref: str = Field(max_length=256)
    created_at: datetime


class ChatContact(SQLModel, table=True):
    """How to reach someone (or a channel) on a chat platform later, keyed by each of their names.

    `address` is the platform's own opaque data (for Teams, a conversation reference as JSON).
    """

    __table_args__ = (UniqueConstraint("platform", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    key: str = Field(max_length=320)
    address: str = Field(sa_type=Text)
    label: str = Field(default="", max_length=256)
    updated_at: datetime


class UsageScan(SQLModel, table=True):
    """One identity's granted-versus-used permissions as one scan found them."""

    id: int | None = Field(default=None, primary_key=True)
    identity_id: str = Field(foreign_key="identity.id", index=True, max_length=40)
    scanned_at: datetime = Field(index=True)
    status: str = Field(max_length=16)
    used: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    unused: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    unknown: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Granted too recently to call unused (less than `unused_after` ago).
    recent: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Action pattern -> when Leash first saw it granted (ISO), carried from scan to scan.
    granted_since: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    unused_count: int = 0
    last_activity_at: datetime | None = None
    inactive: bool = False
    risk: str = Field(default="low", max_length=16)
    # Unused actions that were not unused in the previous scan.
    newly_unused: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    note: str = Field(default="", max_length=1000)


class Enforcement(SQLModel, table=True):
    """A restriction, quarantine or guardrail Leash put on an identity, and how to undo it.

    `active_key` is `<identity>|<kind>` while the enforcement is applying or active and
    NULL otherwise: the unique constraint lets only one of each kind be live per identity,
    so a button pressed twice (or on two replicas) writes once.
    """

    id: str = Field(primary_key=True, max_length=16)
    identity_id: str = Field(foreign_key="identity.id", index=True, max_length=40)
    kind: str = Field(index=True, max_length=16)
    mode: str = Field(max_length=16)
    state: str = Field(index=True, max_length=16)
    active_key: str | None = Field(default=None, unique=True, max_length=64)
    actions: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    reason: str | None = Field(default=None, max_length=1000)
    created_at: datetime
    created_by: str = Field(max_length=256)
    # The authority it was placed with (admin, owner, system): lifting it needs as much.
    placed_as: str = Field(default="admin", max_length=16)
    released_at: datetime | None = None
    released_by: str | None = Field(default=None, max_length=256)


class OwnerReport(SQLModel, table=True):
    """The last nightly findings message sent to an owner: sent again only when it changes."""

    owner: str = Field(primary_key=True, max_length=256)
    fingerprint: str = Field(max_length=64)
    sent_at: datetime


class LeaderLease(SQLModel, table=True):
    """The scheduler's lease: which process leads, under which epoch, until when.

    Written only by `scheduler.leadership` with the database's own clock (`now()`); read by
    `bot.store.fencing` at the start and commit of every scheduler transaction.
    """

    __tablename__ = "leash_leader"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=200)
    epoch: int = Field(sa_type=BigInteger)
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
