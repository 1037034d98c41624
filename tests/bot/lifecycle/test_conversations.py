"""Conversations.remember: a click that names the conversation stored a moment ago writes nothing
(on SQLite each such write queued behind the grant writes, up to 1.3 s of an invoke's answer),
while a new address, a new label or an old memory is written."""

from __future__ import annotations

from sqlmodel import col, delete, select

from bot.app import Leash
from bot.lifecycle.conversations import Conversations, Place
from bot.store.tables import ChatContact

OWNER = Place(keys=("29:alice", "alice@example.com"), address='{"conversation": "a:1"}', label="")


async def stored(leash: Leash) -> dict[str, str]:
    async with leash.context.sessions() as session:
        rows = (await session.exec(select(ChatContact))).all()
    return {row.key: row.address for row in rows}


async def forget_in_database(leash: Leash) -> None:
    """Remove the rows behind the process's back: what it writes next shows up again."""
    async with leash.context.transaction() as session:
        await session.exec(delete(ChatContact).where(col(ChatContact.platform) == "msteams"))


async def test_the_same_place_again_is_not_written_again(leash: Leash) -> None:
    conversations = Conversations(leash.context)
    await conversations.remember("msteams", [OWNER])
    assert await stored(leash) == {"29:alice": OWNER.address, "alice@example.com": OWNER.address}

    await forget_in_database(leash)
    await conversations.remember("msteams", [OWNER])
    assert await stored(leash) == {}


async def test_a_new_address_or_label_is_written(leash: Leash) -> None:
    conversations = Conversations(leash.context)
    await conversations.remember("msteams", [OWNER])
    moved = Place(keys=OWNER.keys, address='{"conversation": "a:2"}', label="")
    await conversations.remember("msteams", [moved])
    assert await stored(leash) == {"29:alice": moved.address, "alice@example.com": moved.address}

    # Back to the first address: the newest wins, though this process stored it before.
    await conversations.remember("msteams", [OWNER])
    assert (await stored(leash))["29:alice"] == OWNER.address

    await forget_in_database(leash)
    renamed = Place(keys=OWNER.keys, address=OWNER.address, label="Alice")
    await conversations.remember("msteams", [renamed])
    assert (await stored(leash))["alice@example.com"] == OWNER.address


async def test_an_old_memory_is_written_again(leash: Leash) -> None:
    conversations = Conversations(leash.context, rewrite_after=0.0)
    await conversations.remember("msteams", [OWNER])
    await forget_in_database(leash)
    await conversations.remember("msteams", [OWNER])
    assert await stored(leash) == {"29:alice": OWNER.address, "alice@example.com": OWNER.address}
