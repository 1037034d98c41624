"""`/metrics` in Prometheus format: this replica's own counters and histograms, counted as
events happen (`bot.http.instruments`), and gauges of the current state read from the
database at each scrape (the same on every replica).

What this process knows is always answered; the database's gauges only when the database
answers within `DATABASE_SECONDS`, else `leash_database_up 0` stands in for them. Nothing here
is rebuilt from rows: a counter or histogram bucket never goes down while the process runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.states import GrantState
from bot.http.instruments import Instruments
from bot.store.engine import session_factory
from bot.store.tables import AccessRequest, AuditEvent, Grant, UsageScan

log = logging.getLogger("leash.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# How long a scrape waits for the database's series before answering without them.
DATABASE_SECONDS = 2.0
WINDOW = timedelta(days=1)  # the scans gauge counts the last day's


# Reads abandoned by a scrape that stopped waiting: kept until they finish cancelling.
_ABANDONED: set[asyncio.Task[CollectorRegistry]] = set()


def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for the counts a scrape reads (the one HTTP reader that queries directly)."""
    return session_factory(engine)


async def render(
    *,
    sessions: async_sessionmaker[AsyncSession],
    now: datetime,
    instruments: Instruments,
    leader: Callable[[], bool],
    within: float = DATABASE_SECONDS,
) -> bytes:
    """Every metric: this replica's own, plus the database's when it answers within `within`."""
    own = CollectorRegistry(auto_describe=True)
    Gauge("leash_leader", "1 when this replica runs the scheduler", registry=own).set(
        1 if leader() else 0
    )
    database_up = Gauge(
        "leash_database_up",
        "1 when the database answered this scrape's queries in time (else its series are left out)",
        registry=own,
    )
    stored = await _bounded(sessions, now=now, within=within)
    database_up.set(0 if stored is None else 1)
    body = generate_latest(own) + generate_latest(instruments.registry)
    return body if stored is None else generate_latest(stored) + body


async def _bounded(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime, within: float
) -> CollectorRegistry | None:
    """The database's series, or None when it fails or is slower than `within` seconds.

    The read runs as its own task so that a database which never answers cannot hold the
    scrape: the task is cancelled and left to unwind on its own.
    """

    async def read() -> CollectorRegistry:
        async with sessions() as session:
            return await _stored(session=session, now=now)

    task = asyncio.create_task(read())
    done, _ = await asyncio.wait({task}, timeout=within)
    if not done:
        task.cancel()
        _ABANDONED.add(task)
        task.add_done_callback(_settled)
        log.warning(
            "metrics: the database did not answer in time; its gauges are left out",
            extra={"within_seconds": within},
        )
        return None
    if (error := task.exception()) is not None:
        log.warning(
            "metrics: the database could not be read; its gauges are left out",
            extra={"error": str(error)},
        )
        return None
    return task.result()


def _settled(task: asyncio.Task[CollectorRegistry]) -> None:
    _ABANDONED.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not report it as lost


async def _stored(*, session: AsyncSession, now: datetime) -> CollectorRegistry:
    """The gauges read from the database (the same on every replica)."""
    registry = CollectorRegistry(auto_describe=True)
    await _states(registry, session=session)
    await _scans(registry, session=session, since=now - WINDOW)
    newest = (await session.exec(select(func.max(AuditEvent.seq)))).one()
    Gauge(
        "leash_audit_head_seq",
        "Sequence number of the newest audit event (ship it: a drop means events were removed)",
        registry=registry,
    ).set(newest or 0)
    return registry


async def _states(registry: CollectorRegistry, *, session: AsyncSession) -> None:
    """Requests and grants by state."""
    requests = Gauge("leash_requests", "Access requests by state", ("state",), registry=registry)
    for state, count in (
        await session.exec(
            select(AccessRequest.state, func.count()).group_by(col(AccessRequest.state))
        )
    ).all():
        requests.labels(state=state).set(count)
    grants = Gauge("leash_grants", "Grants by state", ("state",), registry=registry)
    by_state = dict(
        (await session.exec(select(Grant.state, func.count()).group_by(col(Grant.state)))).all()
    )
    for state in GrantState:
        grants.labels(state=state.value).set(by_state.get(state.value, 0))
    Gauge("leash_active_grants", "Grants in force now", registry=registry).set(
        by_state.get(GrantState.ACTIVE.value, 0)
    )
    Gauge(
        "leash_irrevocable_grants", "Grants Leash could not revoke (alerted)", registry=registry
    ).set(by_state.get(GrantState.IRREVOCABLE.value, 0))


async def _scans(registry: CollectorRegistry, *, session: AsyncSession, since: datetime) -> None:
    """Usage scans of the last day by status, and when the last one ran."""
    scans = Gauge(
        "leash_scans", "Usage scans of the last day by status", ("status",), registry=registry
    )
    for status, count in (
        await session.exec(
            select(UsageScan.status, func.count())
            .where(col(UsageScan.scanned_at) >= since)
            .group_by(col(UsageScan.status))
        )
    ).all():
        scans.labels(status=status).set(count)
    last = (await session.exec(select(func.max(UsageScan.scanned_at)))).one()
    last_scan = Gauge(
        "leash_last_scan_timestamp_seconds", "When the last usage scan ran", registry=registry
    )
    last_scan.set(last.timestamp() if last else 0)
