"""What chat surfaces remember between messages: where people are, which cards they got."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.core.context import Context
from bot.domain.states import RequestState
from bot.store import contacts
from bot.store import message_refs as posted_cards
from bot.store.tables import AccessRequest, ChatContact, ChatMessage

# A place this process stored is written again after this long (another replica may have
# stored a newer address meanwhile); MAX_REMEMBERED bounds the memory of what was stored.
REWRITE_AFTER_SECONDS = 600.0
MAX_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class Place:
    """A conversation to remember under every key it may be asked for by."""

    keys: Sequence[str]
    address: str
    label: str


class Conversations:
    """Chat contacts and the cards posted per request, for one platform at a time."""

    def __init__(self, ctx: Context, *, rewrite_after: float = REWRITE_AFTER_SECONDS) -> None:
        self._ctx = ctx
        self._rewrite_after = rewrite_after
        # What this process stored last under each place's keys, and when (time.monotonic).
        self._stored: dict[tuple[str, tuple[str, ...]], tuple[str, str, float]] = {}

    async def remember(self, platform: str, places: Iterable[Place]) -> None:
        """Store how to reach these places again (the newest address wins), in one go.

        Every message and click names its conversation, so most calls repeat what this process
        stored moments ago: those are not written again (a write per click queued behind the
        grant writes on SQLite) until `rewrite_after` has passed, so the newest address still
        wins within that time.
        """
        moment = time.monotonic()
        fresh = [place for place in places if not self._stored_lately(platform, place, moment)]
        if not fresh:
            return
        now = self._ctx.clock.now()
        async with self._ctx.transaction() as session:
            for place in fresh:
                await contacts.remember(
                    session=session,
                    platform=platform,
                    keys=place.keys,
                    address=place.address,
                    label=place.label,
                    at=now,
                )
        if len(self._stored) >= MAX_REMEMBERED:
            self._stored.clear()
        for place in fresh:
            self._stored[platform, tuple(place.keys)] = (place.address, place.label, moment)

    def _stored_lately(self, platform: str, place: Place, moment: float) -> bool:
        """Whether this process stored exactly this place less than `rewrite_after` ago."""
        stored = self._stored.get((platform, tuple(place.keys)))
        return (
            stored is not None
            and stored[:2] == (place.address, place.label)
            and moment - stored[2] < self._rewrite_after
        )

    async def find(self, platform: str, names: Iterable[str]) -> dict[str, ChatContact | None]:
        """The stored contact of each name (user id, e-mail, channel or team), if any."""
        async with self._ctx.sessions() as session:
            return {
                name: await contacts.find(name, session=session, platform=platform)
                for name in names
            }

    async def card_posted(
        self, platform: str, *, kind: str, channel: str, ref: str, request_id: str | None
    ) -> bool:
        """Record a posted card so it can be updated when its request is decided.

        Returns whether the request was already decided (or expired) once the card was recorded:
        a decision that landed while the card was on its way closed the copies recorded by then,
        not this one, so the caller closes it. Recorded first, read after, nothing slips between.
        """
        async with self._ctx.transaction() as session:
            await posted_cards.remember(
                session=session,
                platform=platform,
                kind=kind,
                channel=channel,
                ref=ref,
                at=self._ctx.clock.now(),
                request_id=request_id,
            )
        if request_id is None:
            return False
        async with self._ctx.sessions() as session:
            request = await session.get(AccessRequest, request_id)
            return request is not None and request.state != RequestState.PENDING

    async def cards_of(self, platform: str, request_id: str) -> list[ChatMessage]:
        """Every card posted on `platform` about a request, oldest first."""
        async with self._ctx.sessions() as session:
            return await posted_cards.for_request(request_id, session=session, platform=platform)
