"""Inventory and ownership queries."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.errors import AmbiguousIdentityError, UnknownIdentityError
from bot.domain.models import Classification, Identity, Ownership
from cloud.base import DiscoveredIdentity

OWNER_TAG_KEYS = ("leash:owner", "owner")
BACKUP_TAG_KEYS = ("leash:backup-owner", "backup-owner")
TEAM_TAG_KEYS = ("leash:team", "team")
AGENT_TAG = "leash:agent"
AGENT_SERVICE_PRINCIPALS = (
    "bedrock.amazonaws.com",
    "bedrock-agentcore.amazonaws.com",
    "sagemaker.amazonaws.com",
)


def identity_id_for(native_id: str) -> str:
    """Derive a stable identity id from the cloud's own id."""
    return "i-" + hashlib.sha256(native_id.encode()).hexdigest()[:16]


def classify(found: DiscoveredIdentity) -> tuple[Classification, str]:
    """Tell AI agents from other workloads, with the reason."""
    if found.tags.get(AGENT_TAG, "").lower() == "true":
        return Classification.AI_AGENT, f"tag {AGENT_TAG}=true"
    for principal in found.trust_principals:
        if principal in AGENT_SERVICE_PRINCIPALS:
            return Classification.AI_AGENT, f"trusted by {principal}"
    return Classification.WORKLOAD, "no agent tag or agent service in its trust policy"


def _first_tag(tags: dict[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = tags.get(key, "").strip()
        if value:
            return value
    return None


async def upsert_discovered(
    found: DiscoveredIdentity, *, session: AsyncSession, now: datetime
) -> Identity:
    """Record a discovered identity; take owners from tags unless someone set them in chat."""
    identity_id = identity_id_for(found.ref.native_id)
    identity = await session.get(Identity, identity_id)
    classification, reason = classify(found)
    tags = dict(found.tags)
    if identity is None:
        identity = Identity(
            id=identity_id,
            provider=found.ref.provider,
            account=found.ref.account,
            native_id=found.ref.native_id,
            name=found.ref.name,
            kind=found.ref.kind,
            discovered_at=now,
        )
    identity.classification = classification
    identity.classification_reason = reason
    identity.tags = tags
    identity.created_at = found.created_at
    identity.last_used_at = found.last_used_at
    identity.discovered_at = now
    identity.present = True
    session.add(identity)
    ownership = await session.get(Ownership, identity_id)
    primary = _first_tag(tags, OWNER_TAG_KEYS)
    if (ownership is None or ownership.source == "tag") and primary:
        ownership = ownership or Ownership(
            identity_id=identity_id, updated_at=now, updated_by="tags"
        )
        ownership.primary_owner = primary
        ownership.backup_owner = _first_tag(tags, BACKUP_TAG_KEYS)
        ownership.team = _first_tag(tags, TEAM_TAG_KEYS)
        ownership.source = "tag"
        ownership.updated_at = now
        session.add(ownership)
    return identity


async def resolve(reference: str, *, session: AsyncSession) -> Identity:
    """Find an identity by ARN / native id, by id, or by a unique short name."""
    ref = reference.strip()
    if not ref or len(ref) > 512:
        raise UnknownIdentityError("Name an identity by its ARN or its short name.")
    exact = (
        await session.exec(
            select(Identity).where(or_(Identity.native_id == ref, Identity.id == ref))
        )
    ).first()
    if exact is not None:
        return exact
    named = (await session.exec(select(Identity).where(Identity.name == ref))).all()
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        choices = ", ".join(sorted(i.native_id for i in named))
        raise AmbiguousIdentityError(f"'{ref}' names several identities; use the ARN: {choices}")
    raise UnknownIdentityError(
        f"No identity called '{ref[:80]}' is known. Try `identities` to list them."
    )


async def owners_of(identity_id: str, *, session: AsyncSession) -> Ownership | None:
    return await session.get(Ownership, identity_id)


async def owned_by(user: str, *, session: AsyncSession) -> list[tuple[Identity, Ownership]]:
    """Identities whose primary or backup owner is `user`."""
    rows = await session.exec(
        select(Identity, Ownership)
        .join(Ownership, col(Ownership.identity_id) == col(Identity.id))
        .where(or_(Ownership.primary_owner == user, Ownership.backup_owner == user))
        .order_by(col(Identity.name))
    )
    return list(rows.all())


async def search(
    text_filter: str | None, *, session: AsyncSession, limit: int = 50
) -> list[tuple[Identity, Ownership | None]]:
    """List identities whose name, ARN, account or owner contains the filter."""
    query = (
        select(Identity, Ownership)
        .join(Ownership, col(Ownership.identity_id) == col(Identity.id), isouter=True)
        .order_by(col(Identity.account), col(Identity.name))
        .limit(limit)
    )
    if text_filter:
        like = f"%{text_filter.strip()[:100]}%"
        query = query.where(
            or_(
                col(Identity.name).ilike(like),
                col(Identity.native_id).ilike(like),
                col(Identity.account).ilike(like),
                col(Identity.classification).ilike(like),
                col(Ownership.primary_owner).ilike(like),
                col(Ownership.team).ilike(like),
            )
        )
    return list((await session.exec(query)).all())
