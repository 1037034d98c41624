"""What every lifecycle step needs, and the transaction / compare-and-set helpers.

A move of a request, grant or enforcement between states goes through bot.core.transitions,
which checks it against the transition table before its compare-and-set.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.sql import Update
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.observations import NoObserver, Observer
from bot.domain.actors import Actor
from bot.domain.errors import LeashError
from bot.domain.messages import Notice
from bot.domain.ports import ChartRenderer, Clock, CrashPoints, NoCrashes, Notifier, Timers
from bot.domain.rules import Rules
from bot.domain.states import Outcome
from bot.store import audit
from bot.store.tables import AccessRequest, Grant, Identity
from cloud.base import CloudProvider, IdentityKind, IdentityRef

log = logging.getLogger("leash.lifecycle")

_ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_id(prefix: str) -> str:
    """Return a short random id that is easy to type, e.g. `r-k3m9x2pq`."""
    return prefix + "-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


@dataclass(slots=True)
class Context:
    """The collaborators of the lifecycle, built once by the composition root."""

    sessions: async_sessionmaker[AsyncSession]
    providers: Mapping[str, CloudProvider]
    notifier: Notifier
    clock: Clock
    rules: Rules
    timers: Timers
    charts: ChartRenderer | None = None
    crashes: CrashPoints = field(default_factory=NoCrashes)
    observer: Observer = field(default_factory=NoObserver)  # counts events for /metrics

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """Open a session with a transaction that commits on success."""
        async with self.sessions() as session, session.begin():
            yield session

    def provider_for(self, identity: Identity) -> CloudProvider:
        provider = self.providers.get(identity.provider)
        if provider is None:
            raise LeashError(f"No '{identity.provider}' cloud is configured for {identity.name}.")
        return provider

    async def tell(self, notice: Notice) -> None:
        """Deliver a notice; a delivery problem is logged, never fatal to the lifecycle."""
        if not notice.recipients:
            return
        try:
            await self.notifier.notify(notice)
        except Exception:
            log.exception(
                "could not deliver a %s notice to %s",
                notice.kind.value,
                ", ".join(notice.recipients),
                extra={"notice": notice.kind.value, "recipients": list(notice.recipients)},
            )

    async def refuse(
        self,
        error: LeashError,
        *,
        actor: Actor,
        event_type: str,
        identity_id: str | None = None,
        request_id: str | None = None,
        grant_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> LeashError:
        """Audit a refused attempt in its own transaction and hand the error back to raise.

        The affected identity is looked up from the request or grant when the caller has only
        their id, so every refusal names what it was about.
        """
        async with self.transaction() as session:
            identity_id = identity_id or await _affected_identity(
                session, request_id=request_id, grant_id=grant_id
            )
            identity = await session.get(Identity, identity_id) if identity_id else None
            await audit.append(
                session=session,
                actor=actor,
                event_type=event_type,
                at=self.clock.now(),
                outcome=Outcome.FAILURE,
                identity_id=identity_id,
                resource=identity.native_id if identity else None,
                request_id=request_id,
                grant_id=grant_id,
                detail={"error": error.code, "message": str(error)} | (detail or {}),
            )
        return error


async def _affected_identity(
    session: AsyncSession, *, request_id: str | None, grant_id: str | None
) -> str | None:
    if request_id is not None:
        request = await session.get(AccessRequest, request_id)
        if request is not None:
            return request.identity_id
    if grant_id is not None:
        grant = await session.get(Grant, grant_id)
        if grant is not None:
            return grant.identity_id
    return None


def identity_ref(identity: Identity) -> IdentityRef:
    """Address an inventory identity in its cloud."""
    return IdentityRef(
        provider=identity.provider,
        account=identity.account,
        native_id=identity.native_id,
        name=identity.name,
        kind=IdentityKind(identity.kind),
    )


async def compare_and_set(session: AsyncSession, statement: Update) -> bool:
    """Run a guarded UPDATE; True when exactly the guarded row changed.

    For columns that are not a state (a warning sent, a token used); a state moves through
    bot.core.transitions.set_state.
    """
    result = await session.exec(statement)
    return result.rowcount == 1
