"""The usage scan: granted versus used permissions of every identity, stored per scan."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import col, select
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from bot.core.context import Context, identity_ref
from bot.domain import log_context
from bot.domain.actors import SYSTEM
from bot.domain.findings import judge
from bot.posture.usage_scan_failures import ScanFailures, UnreadableAccount
from bot.store import audit
from bot.store.tables import Identity, UsageScan
from cloud.base import CloudError, UsageReport

log = logging.getLogger("leash.scan")


@dataclass(slots=True)
class ScanSummary:
    """What one scan did: identities scanned, those whose usage is unknown, and failures.

    `failures` holds each failed identity's error; `unreadable` the accounts in which none could
    be read, and `failed_elsewhere` why each other failed identity did, in words.
    """

    scanned: int = 0
    unknown: int = 0
    unused_total: int = 0
    inactive: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    unreadable: tuple[UnreadableAccount, ...] = ()
    failed_elsewhere: dict[str, str] = field(default_factory=dict)


async def latest_scans(
    ctx: Context, identity_ids: Sequence[str] | None = None
) -> dict[str, UsageScan]:
    """The most recent scan of each identity (of the given ones, or all)."""
    async with ctx.sessions() as session:
        query = select(UsageScan).order_by(col(UsageScan.id))
        if identity_ids is not None:
            query = query.where(col(UsageScan.identity_id).in_(identity_ids))
        rows = (await session.exec(query)).all()
    return {row.identity_id: row for row in rows}


def _retryable(error: BaseException) -> bool:
    return isinstance(error, CloudError) and error.retryable


class UsageScanner:
    """Asks each identity's cloud for usage, a few at once, retrying throttled calls."""

    def __init__(self, ctx: Context, *, backoff_seconds: float = 2.0) -> None:
        self._ctx = ctx
        self._backoff = backoff_seconds

    async def scan(self, identity_ids: Sequence[str] | None = None) -> ScanSummary:
        """Scan the given present identities (all when None) and store one result each.

        The run's `scan.completed` audit event records how long it took and how many
        identities failed; the observer counts both for this replica's /metrics.
        """
        ctx = self._ctx
        started_at = ctx.clock.now()
        started = time.monotonic()
        async with ctx.sessions() as session:
            query = select(Identity).where(col(Identity.present)).order_by(col(Identity.name))
            if identity_ids is not None:
                query = query.where(col(Identity.id).in_(identity_ids))
            identities = list((await session.exec(query)).all())
        previous = await latest_scans(ctx, [identity.id for identity in identities])
        summary = ScanSummary()
        failures = ScanFailures()
        limit = asyncio.Semaphore(ctx.rules.least_privilege.scan_concurrency)

        async def one(identity: Identity) -> None:
            with log_context.about(identity=identity.native_id):
                async with limit:
                    try:
                        report = await self._usage(identity)
                    # LookupError: no provider is configured for it.
                    except (CloudError, LookupError) as error:
                        failures.failed(identity, error)
                        summary.failures[identity.name] = str(error)
                        return
                failures.read(identity)
                scan = await self._store(identity, report, previous.get(identity.id))
            summary.scanned += 1
            summary.unknown += scan.status == "unknown"
            summary.unused_total += scan.unused_count
            summary.inactive += scan.inactive

        async with AsyncExitStack() as scanning:
            for provider in ctx.providers.values():  # lets a cloud share reads across the scan
                await scanning.enter_async_context(provider.scanning())
            await asyncio.gather(*(one(identity) for identity in identities))
        summary.unreadable = failures.unreadable()
        summary.failed_elsewhere = failures.elsewhere()
        failures.log_summary()
        duration = time.monotonic() - started
        await self._completed(summary, started_at=started_at, duration=duration)
        log.info(
            "usage scan: %d scanned, %d failed, in %.1f s",
            summary.scanned,
            len(summary.failures),
            duration,
        )
        return summary

    async def _completed(
        self, summary: ScanSummary, *, started_at: datetime, duration: float
    ) -> None:
        """Record the run as a `scan.completed` audit event, then count it (for /metrics)."""
        async with self._ctx.transaction() as session:
            await audit.append(
                session=session,
                actor=SYSTEM,
                event_type="scan.completed",
                at=self._ctx.clock.now(),
                detail={
                    "scanned": summary.scanned,
                    "usage_unknown": summary.unknown,
                    "unused_total": summary.unused_total,
                    "inactive": summary.inactive,
                    "failed": len(summary.failures),
                    "failures": dict(list(summary.failures.items())[:50]),
                    "started_at": started_at.isoformat(),
                    "duration_seconds": round(duration, 3),
                },
            )
        self._ctx.observer.scan_completed(seconds=duration, failed=len(summary.failures))

    async def _usage(self, identity: Identity) -> UsageReport:
        ctx = self._ctx
        provider = ctx.providers.get(identity.provider)
        if provider is None:
            raise LookupError(f"no '{identity.provider}' cloud is configured")
        since = ctx.clock.now() - ctx.rules.least_privilege.unused_after
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(ctx.rules.least_privilege.scan_attempts),
            wait=wait_exponential_jitter(multiplier=self._backoff, max=60),
            reraise=True,
        ):
            with attempt:
                return await provider.usage(identity_ref(identity), since)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _store(
        self, identity: Identity, report: UsageReport, previous: UsageScan | None
    ) -> UsageScan:
        ctx = self._ctx
        now = ctx.clock.now()
        found = judge(
            report,
            identity=identity,
            previous=previous,
            rules=ctx.rules.least_privilege,
            now=now,
        )
        scan = UsageScan(
            identity_id=identity.id,
            scanned_at=now,
            status=found.status,
            used=list(found.used),
            unused=list(found.unused),
            unknown=list(found.unknown),
            recent=list(found.recent),
            granted_since=found.granted_since,
            unused_count=len(found.unused),
            last_activity_at=found.last_activity_at,
            inactive=found.inactive,
            risk=found.risk,
            newly_unused=list(found.newly_unused),
            note=found.note,
        )
        async with ctx.transaction() as session:
            session.add(scan)
        return scan
