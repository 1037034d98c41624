"""Identities a database remembers from an earlier discovery, put there directly."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import Leash
from bot.domain.states import Classification
from bot.inventory.registry import identity_id_for
from bot.store.tables import Identity


async def remember_roles(leash: Leash, account: str, *names: str) -> None:
    """Store AWS agent roles `names` of `account` as an earlier discovery would have left them."""
    async with AsyncSession(leash.engine) as session:
        for name in names:
            arn = f"arn:aws:iam::{account}:role/{name}"
            session.add(
                Identity(
                    id=identity_id_for(arn),
                    provider="aws",
                    account=account,
                    native_id=arn,
                    name=name,
                    kind="role",
                    classification=Classification.AI_AGENT,
                    discovered_at=datetime.now(UTC),
                )
            )
        await session.commit()
