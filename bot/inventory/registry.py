"""Inventory and ownership queries."""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel, col, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.errors import AmbiguousIdentityError, UnknownIdentityError
from bot.domain.handles import keys_for
from bot.domain.rules import ClassificationRules, Rules
from bot.domain.states import Classification
from bot.store.tables import Identity, Ownership
from cloud.base import DiscoveredIdentity

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,24}")
_CHAT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_Row = TypeVar("_Row", bound=SQLModel)


def identity_id_for(native_id: str) -> str:
    """Derive a stable identity id from the cloud's own id."""
    return "i-" + hashlib.sha256(native_id.encode()).hexdigest()[:16]


def classify(found: DiscoveredIdentity, rules: ClassificationRules) -> tuple[Classification, str]:
    """Tell AI agents from other workloads by the policy file's rules, with the reason."""
    for key, value in rules.agent_tags.items():
        if found.tags.get(key, "").strip().lower() == value.lower():
            return Classification.AI_AGENT, f"tag {key}={value}"
    for principal in found.trust_principals:
        if principal in rules.agent_trust_principals:
            return Classification.AI_AGENT, f"trusted by {principal}"
    for pattern in rules.agent_name_patterns:
        if fnmatch.fnmatchcase(found.ref.name.lower(), pattern.lower()):
            return Classification.AI_AGENT, f"name matches {pattern}"
    return Classification.WORKLOAD, "no agent tag, agent service trust or agent name pattern"


def valid_owner(value: str) -> bool:
    """An owner is an e-mail address or a chat user id."""
    return bool(_EMAIL.fullmatch(value) or _CHAT_ID.fullmatch(value))


def _first_tag(tags: Mapping[str, str], keys: tuple[str, ...]) -> tuple[str | None, str | None]:
    """The first non-empty tag among `keys`, whatever their letter case: (key, value).

    Cloud tag keys are case-insensitive (IAM), or written in any case by people: `Owner`,
    `LEASH:OWNER` and `leash:owner` are one key. Two spellings with different values are a
    conflict: neither is believed.
    """
    by_key: dict[str, set[str]] = {}
    for key, value in tags.items():
        if value.strip():
            by_key.setdefault(key.casefold(), set()).add(value.strip())
    for key in keys:
        values = by_key.get(key.casefold(), set())
        if len(values) == 1:
            return key, next(iter(values))
    return None, None


async def _insert_absent(row: _Row, *, session: AsyncSession) -> _Row:
    """Insert `row` unless a row with its key exists (`ON CONFLICT DO NOTHING`); return the
    stored row, locked for this transaction.

    Replicas started together discover the same identities at once: a read that found nothing
    followed by a plain INSERT fails with a unique violation in whichever commits second.
    """
    table = type(row).__table__  # type: ignore[attr-defined]
    values = {column.name: getattr(row, column.key) for column in table.columns}
    bind = session.bind
    dialect = postgresql if bind is not None and bind.dialect.name == "postgresql" else sqlite
    await session.exec(dialect.insert(table).values(values).on_conflict_do_nothing())
    key = tuple(values[column.name] for column in table.primary_key.columns)
    stored = await session.get(
        type(row), key[0] if len(key) == 1 else key, with_for_update=True, populate_existing=True
    )
    if stored is None:  # another unique key (not the primary key) was taken
        raise LookupError(f"{table.name} {key}: a row with another key holds its unique values")
    return stored


async def upsert_discovered(
    found: DiscoveredIdentity, *, rules: Rules, session: AsyncSession, now: datetime
) -> tuple[Identity, list[str]]:
    """Record a discovered identity and owners from its tags (unless set in chat).

    Returns the identity and the problems found in its tags (e.g. a malformed owner tag).
    """
    identity = await _record_identity(found, rules=rules, session=session, now=now)
    ownership = await session.get(Ownership, identity.id)
    if ownership is not None and ownership.source == "chat":
        return identity, []
    people, problems = _tagged_people(found, rules)
    if people["owner"] is None:
        if ownership is not None and ownership.source == "tag":
            ownership.primary_owner = None  # the tag was removed or became invalid
            session.add(ownership)
        return identity, problems
    if ownership is None:
        ownership = await _insert_absent(
            Ownership(identity_id=identity.id, source="tag", updated_at=now, updated_by="tags"),
            session=session,
        )
        if ownership.source == "chat":  # set in chat since this transaction began
            return identity, problems
    if ownership.primary_owner and keys_for([ownership.primary_owner]) != keys_for(
        [people["owner"]]
    ):
        # Whoever can write the tag is not thereby the owner: an owner read from a changed
        # tag is a proposal that an admin confirms (`owner confirm`), announced by the caller.
        if ownership.proposed_owner != people["owner"]:
            ownership.proposed_owner, ownership.proposed_at = people["owner"], now
            session.add(ownership)
        return identity, problems
    _, team = _first_tag(found.tags, rules.ownership.team_tags)
    _, purpose = _first_tag(found.tags, rules.ownership.purpose_tags)
    changed = ownership.primary_owner != people["owner"]
    ownership.primary_owner = people["owner"]
    ownership.backup_owner = people["backup"]
    ownership.team = team[:128] if team else None
    ownership.purpose = purpose[:512] if purpose else None
    ownership.source = "tag"
    if changed:
        ownership.updated_at = now
        ownership.updated_by = "tags"
    session.add(ownership)
    return identity, problems


async def _record_identity(
    found: DiscoveredIdentity, *, rules: Rules, session: AsyncSession, now: datetime
) -> Identity:
    """Insert or refresh the identity's row from what discovery found (present again)."""
    identity_id = identity_id_for(found.ref.native_id)
    identity = await session.get(Identity, identity_id)
    classification, reason = classify(found, rules.classification)
    if identity is None:
        identity = await _insert_absent(
            Identity(
                id=identity_id,
                provider=found.ref.provider,
                account=found.ref.account,
                native_id=found.ref.native_id,
                name=found.ref.name,
                kind=found.ref.kind,
                discovered_at=now,
            ),
            session=session,
        )
    identity.name = found.ref.name
    identity.classification = classification
    identity.classification_reason = reason
    identity.tags = dict(found.tags)
    identity.created_at = found.created_at
    identity.last_used_at = found.last_used_at
    identity.created_by = found.created_by
    identity.granted_by = list(found.granted_by)
    identity.attached_policies = list(found.attached_policies)
    identity.inline_policies = list(found.inline_policies)
    identity.discovered_at = now
    identity.present = True
    identity.deleted_at = None
    session.add(identity)
    return identity


def _tagged_people(
    found: DiscoveredIdentity, rules: Rules
) -> tuple[dict[str, str | None], list[str]]:
    """The owner and backup its tags name (None if absent or malformed), and the problems."""
    problems: list[str] = []
    people: dict[str, str | None] = {}
    for role, keys in (
        ("owner", rules.ownership.owner_tags),
        ("backup", rules.ownership.backup_tags),
    ):
        key, value = _first_tag(found.tags, keys)
        if value is not None and not valid_owner(value):
            problems.append(
                f"{found.ref.native_id}: tag {key}={value[:80]!r} "
                "is neither an e-mail nor a chat id"
            )
            value = None
        people[role] = value
    return people, problems


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
    present = [identity for identity in named if identity.present]
    if len(present) == 1:  # the others are deleted: their ARN still names them
        return present[0]
    if len(named) > 1:
        choices = ", ".join(sorted(i.native_id for i in named))
        raise AmbiguousIdentityError(f"'{ref}' names several identities; use the ARN: {choices}")
    raise UnknownIdentityError(
        f"No identity called '{ref[:80]}' is known. Try `identities` to list them."
    )


async def owners_of(identity_id: str, *, session: AsyncSession) -> Ownership | None:
    return await session.get(Ownership, identity_id)


async def owned_by(user: str, *, session: AsyncSession) -> list[tuple[Identity, Ownership]]:
    """Identities whose primary or backup owner is `user` (names compared as handles)."""
    folded = user.strip().lower()
    rows = await session.exec(
        select(Identity, Ownership)
        .join(Ownership, col(Ownership.identity_id) == col(Identity.id))
        .where(
            or_(
                func.lower(col(Ownership.primary_owner)) == folded,
                func.lower(col(Ownership.backup_owner)) == folded,
            )
        )
        .order_by(col(Identity.name))
    )
    wanted = keys_for([user])
    return [
        (identity, ownership)
        for identity, ownership in rows.all()
        if wanted & keys_for([ownership.primary_owner, ownership.backup_owner])
    ]


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
