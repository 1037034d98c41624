"""At most one message per second per channel, as Slack asks of apps."""

from __future__ import annotations

import asyncio


class ChannelPacer:
    """Spaces posts to the same channel by `interval` seconds (in this process)."""

    def __init__(self, interval: float = 1.0) -> None:
        self._interval = interval
        self._next: dict[str, float] = {}

    async def wait(self, channel: str) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self._next.get(channel, now))
        self._next[channel] = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)
