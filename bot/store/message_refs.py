"""Where Leash's messages about a request live on each chat platform, for updating every copy."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.tables import ChatMessage


async def remember(
    *,
    session: AsyncSession,
    platform: str,
    kind: str,
    channel: str,
    ref: str,
    at: datetime,
    request_id: str | None = None,
    grant_id: str | None = None,
) -> None:
    """Record one posted message (a card) so it can be updated when the request is decided."""
    session.add(
        ChatMessage(
            platform=platform,
            kind=kind,
            channel=channel,
            ref=ref,
            created_at=at,
            request_id=request_id,
            grant_id=grant_id,
        )
    )


async def for_request(
    request_id: str, *, session: AsyncSession, platform: str
) -> list[ChatMessage]:
    """Every card posted on `platform` about a request, oldest first."""
    rows = await session.exec(
        select(ChatMessage)
        .where(col(ChatMessage.request_id) == request_id, col(ChatMessage.platform) == platform)
        .order_by(col(ChatMessage.id))
    )
    return list(rows.all())
