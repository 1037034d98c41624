"""`/metrics` in Prometheus format: what the database says (the same on every replica) and
what this process knows by itself (whether it leads, its own HTTP requests).

What this process knows is always answered; the database's series only when the database
answers within `DATABASE_SECONDS`, else `leash_database_up 0` stands in for them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.states import GrantState
from bot.store.engine import session_factory
from bot.store.tables import AccessRequest, AuditEvent, Grant, UsageScan

log = logging.getLogger("leash.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# How long a scrape waits for the database's series before answering without them.
DATABASE_SECONDS = 2.0
WINDOW = timedelta(days=1)  # durations are observed over the last day's rows
MAX_ROWS = 5000
SECONDS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)
SCAN_COMPLETED = "scan.completed"


@dataclass
class HttpMetrics:
    """Requests this process answered, by route and status class (per replica)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "leash_http_requests",
            "HTTP requests this replica answered",
            ("route", "status"),
            registry=self.registry,
        )

    def observe(self, route: str, status: int) -> None:
        self.requests.labels(route=route, status=f"{status // 100}xx").inc()


def _histogram(registry: CollectorRegistry, name: str, help_text: str) -> Histogram:
    return Histogram(name, help_text, buckets=SECONDS, registry=registry)


class _Read(Collector):
    """Metric families read from the database for this scrape (no `_created` sample, which
    would be this scrape's time rather than when the count began)."""

    def __init__(self, *families: Metric) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max((later - earlier).total_seconds(), 0.0)


# Reads abandoned by a scrape that stopped waiting: kept until they finish cancelling.
_ABANDONED: set[asyncio.Task[CollectorRegistry]] = set()


def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for the counts a scrape reads (the one HTTP reader that queries directly)."""
    return session_factory(engine)


async def render(
    *,
    sessions: async_sessionmaker[AsyncSession],
    now: datetime,
    http: HttpMetrics,
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
    body = generate_latest(own) + generate_latest(http.registry)
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
        log.warning("metrics: the database did not answer within %g s", within)
        return None
    if (error := task.exception()) is not None:
        log.warning("metrics: the database could not be read: %s", error)
        return None
    return task.result()


def _settled(task: asyncio.Task[CollectorRegistry]) -> None:
    _ABANDONED.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not report it as lost


async def _stored(*, session: AsyncSession, now: datetime) -> CollectorRegistry:
    """The series read from the database (the same on every replica)."""
    registry = CollectorRegistry(auto_describe=True)
    since = now - WINDOW
    await _states(registry, session=session)
    await _timings(registry, session=session, since=since)
    await _scans(registry, session=session, since=since)
    await _scan_runs(registry, session=session, since=since)
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


async def _timings(registry: CollectorRegistry, *, session: AsyncSession, since: datetime) -> None:
    """How long approvals, cloud grants and revocations took over the last day."""
    wait = _histogram(
        registry, "leash_approval_wait_seconds", "Request created to decided (last day)"
    )
    decided = await session.exec(
        select(AccessRequest.created_at, AccessRequest.decided_at)
        .where(col(AccessRequest.decided_at) >= since)
        .limit(MAX_ROWS)
    )
    for created, decided_at in decided.all():
        if (value := _seconds(decided_at, created)) is not None:
            wait.observe(value)
    apply = _histogram(registry, "leash_grant_apply_seconds", "Approval to cloud grant (last day)")
    lag = _histogram(
        registry, "leash_revoke_lag_seconds", "Expiry to revocation, expired grants (last day)"
    )
    rows = await session.exec(
        select(Grant.created_at, Grant.applied_at, Grant.expires_at, Grant.revoked_at)
        .where(col(Grant.created_at) >= since - timedelta(days=1))
        .limit(MAX_ROWS)
    )
    for created, applied, expires, revoked in rows.all():
        if (value := _seconds(applied, created)) is not None:
            apply.observe(value)
        if revoked is not None and revoked >= expires and revoked >= since:
            lag.observe((revoked - expires).total_seconds())


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


async def _scan_runs(
    registry: CollectorRegistry, *, session: AsyncSession, since: datetime
) -> None:
    """Scan runs as their `scan.completed` audit events record them (by whichever replica)."""
    completed = col(AuditEvent.event_type) == SCAN_COMPLETED
    detail = col(AuditEvent.detail)
    duration = _histogram(
        registry, "leash_scan_duration_seconds", "Usage scan runs by duration (last day)"
    )
    rows = await session.exec(
        select(detail["duration_seconds"].as_float())
        .where(completed, col(AuditEvent.at) >= since)
        .limit(MAX_ROWS)
    )
    for seconds in rows.all():
        if seconds is not None:  # runs recorded before durations were
            duration.observe(seconds)
    failed = (
        await session.exec(select(func.sum(detail["failed"].as_integer())).where(completed))
    ).one()
    errors = CounterMetricFamily(
        "leash_scan_errors",
        "Identities whose usage a scan could not read, over all scan runs",
        value=failed or 0,
    )
    registry.register(_Read(errors))
