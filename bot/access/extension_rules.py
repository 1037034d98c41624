"""Who may ask to extend a grant, and how long a grant may last in all."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.authorizing import check, identity_facts, requester_keys
from bot.core.context import Context
from bot.domain.actors import Actor
from bot.domain.authority import Facts, Verb
from bot.domain.durations import format_duration
from bot.domain.errors import DurationTooLongError, GrantStateError, UnknownGrantError
from bot.domain.rules import Rules
from bot.domain.states import GrantState, Tier
from bot.store.tables import AccessRequest, Grant, Identity, Ownership


async def original_request(grant_id: str, *, session: AsyncSession) -> AccessRequest | None:
    """The request that created a grant."""
    grant = await session.get(Grant, grant_id)
    return await session.get(AccessRequest, grant.request_id) if grant is not None else None


def check_total_length(
    grant: Grant, original: AccessRequest, extra: timedelta, *, rules: Rules
) -> None:
    """Refuse an extension that would make the grant outlast its tier's maximum."""
    limit = rules.tier_rule(Tier(original.tier)).max_duration
    start = grant.created_at  # the approval: expires_at is counted from it
    total = grant.expires_at + extra - start
    if total > limit:
        left = max(limit - (grant.expires_at - start), timedelta(0))
        raise DurationTooLongError(
            f"Grant {grant.id} would last {format_duration(total)} in all, longer than the "
            f"{format_duration(limit)} its tier ({original.tier}) allows; at most "
            f"{format_duration(left)} more can be asked.",
            field="duration",
        )


async def check_extension(
    grant_id: str | None,
    duration: timedelta,
    *,
    actor: Actor,
    ctx: Context,
    session: AsyncSession,
) -> frozenset[str]:
    """Check an extension may be asked; return the grant requester's handles.

    Asked by the grant's requester, an owner or the identity's agent; the grant stays within
    its tier's maximum length. Neither the asker nor the grant's requester may approve it.
    """
    grant = await session.get(Grant, (grant_id or "").strip()[:16])
    if grant is None:
        raise UnknownGrantError(f"There is no grant '{(grant_id or '')[:20]}'.")
    if grant.state != GrantState.ACTIVE:
        raise GrantStateError(
            f"Grant {grant.id} is {grant.state}; only an active grant can be extended."
        )
    original = await session.get(AccessRequest, grant.request_id)
    identity = await session.get(Identity, grant.identity_id)
    assert original is not None
    assert identity is not None
    base = identity_facts(identity, await session.get(Ownership, identity.id), ctx.rules)
    check(Verb.EXTEND, actor, _with_requester(base, requester_keys(original)))
    check_total_length(grant, original, duration, rules=ctx.rules)
    return requester_keys(original)


def _with_requester(facts: Facts, keys: frozenset[str]) -> Facts:
    return replace(facts, requester=keys)
