"""The Teams surface: the Bot Framework bot at `/api/messages` and notices as Adaptive Cards."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.commands.handler import CommandHandler
from bot.domain.messages import Notice
from bot.lifecycle.service import Lifecycle
from bot.surfaces.teams.background import Background
from bot.surfaces.teams.card_work import CardWork
from bot.surfaces.teams.connector import (
    ConnectorRetry,
    TeamsAuth,
    build_adapter,
    messages_route,
    on_turn_error,
)
from bot.surfaces.teams.inbound import TeamsBot
from bot.surfaces.teams.outbound import Outbound
from bot.surfaces.teams.people import PLATFORM, People

log = logging.getLogger("leash.teams")


class TeamsSurface:
    """Translates Teams activities into commands and notices into cards; no domain logic."""

    name = PLATFORM

    def __init__(
        self,
        *,
        lifecycle: Lifecycle,
        handler: CommandHandler,
        auth: TeamsAuth,
        retry_seconds: float = 1.0,
        report_unreachable: bool = True,
    ) -> None:
        self.auth = auth
        if auth.tenants.any_tenant:
            log.warning(
                "Teams serves every Microsoft 365 tenant (a MultiTenant bot without "
                "LEASH_TEAMS_TENANTS): anyone who installs the app in their tenant can use Leash"
            )
        self._adapter = build_adapter(auth)
        on_turn_error(self._adapter)
        retry = ConnectorRetry(base_seconds=retry_seconds)
        self._outbound = Outbound(
            lifecycle=lifecycle,
            adapter=self._adapter,
            app_id=auth.app_id,
            retry=retry,
            report_unreachable=report_unreachable,
        )
        self._deliveries = Background()
        # Cloud work of buttons, after their invoke was answered (card_work.py).
        self._card_work = Background()
        work = CardWork(
            lifecycle=lifecycle,
            handler=handler,
            outbound=self._outbound,
            work=self._card_work,
            deliveries=self._deliveries,
        )
        self._bot = TeamsBot(
            lifecycle=lifecycle, handler=handler, people=People(retry), retry=retry, work=work
        )

    def route(self) -> Callable[[web.Request], Awaitable[web.Response]]:
        """The aiohttp handler for `POST /api/messages`."""
        return messages_route(self._adapter, self._bot.on_turn, auth=self.auth)

    async def notify(self, notice: Notice) -> None:
        """Deliver in the background so no lifecycle step waits on the Bot Connector."""
        self._deliveries.start(self._outbound.deliver(notice))

    async def drain(self) -> None:
        """Wait for every button's cloud work and every delivery in flight (shutdown, tests)."""
        while self._card_work or self._deliveries:
            await self._card_work.drain()
            await self._deliveries.drain()
