"""How to reach people and channels on a chat platform later, stored under each of their names."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.tables import ChatContact

KEY_LIMIT = 320


def normal_key(name: str) -> str:
    """The form a name is stored under: trimmed and case-folded (e-mails are case-blind)."""
    return name.strip().lower()[:KEY_LIMIT]


async def remember(
    *,
    session: AsyncSession,
    platform: str,
    keys: Iterable[str],
    address: str,
    label: str,
    at: datetime,
) -> None:
    """Store (or refresh) one address under every key; the newest address wins."""
    wanted = {normal_key(key) for key in keys if key and key.strip()}
    if not wanted:
        return
    rows = await session.exec(
        select(ChatContact).where(
            col(ChatContact.platform) == platform, col(ChatContact.key).in_(wanted)
        )
    )
    existing = {row.key: row for row in rows.all()}
    for key in sorted(wanted):
        row = existing.get(key) or ChatContact(
            platform=platform, key=key, address=address, updated_at=at
        )
        row.address, row.label, row.updated_at = address, label[:256], at
        session.add(row)


async def find(name: str, *, session: AsyncSession, platform: str) -> ChatContact | None:
    """The address stored for a name (user id, e-mail, channel id or team name), if any."""
    return (
        await session.exec(
            select(ChatContact).where(
                col(ChatContact.platform) == platform,
                col(ChatContact.key) == normal_key(name),
            )
        )
    ).first()
