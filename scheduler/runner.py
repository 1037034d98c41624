"""APScheduler wiring: timers derived from the database, rebuilt at start."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.domain.lifecycle import Lifecycle
from scheduler import jobs

log = logging.getLogger("leash.scheduler")

SWEEP_JOB = "sweep"
RECONCILE_JOB = "reconcile"
RECONCILE_EVERY_SECONDS = 3600


def revoke_job_id(grant_id: str) -> str:
    return f"revoke:{grant_id}"


class Runner:
    """Owns the one AsyncIOScheduler of this process; implements the domain's Timers port."""

    def __init__(self, *, sweep_seconds: float) -> None:
        self._sweep_seconds = sweep_seconds
        self._lifecycle: Lifecycle | None = None
        # In memory on purpose: the database is the source of truth and timers are rebuilt from it.
        self._scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def schedule_revoke(self, grant_id: str, at: datetime) -> None:
        if self._lifecycle is None:
            return
        self._scheduler.add_job(
            jobs.revoke_grant,
            trigger="date",
            run_date=at,
            args=(self._lifecycle, grant_id),
            id=revoke_job_id(grant_id),
            replace_existing=True,
        )

    def cancel_revoke(self, grant_id: str) -> None:
        job = self._scheduler.get_job(revoke_job_id(grant_id))
        if job is not None:
            job.remove()

    def job_ids(self) -> list[str]:
        return sorted(job.id for job in self._scheduler.get_jobs())

    async def start(self, lifecycle: Lifecycle) -> None:
        """Start, re-arm every live grant's timer, and sweep at once to catch up on downtime."""
        self._lifecycle = lifecycle
        self._scheduler.start()
        for grant_id, expires_at in await lifecycle.sweep.timers_to_rebuild():
            self.schedule_revoke(grant_id, expires_at)
        self._scheduler.add_job(
            jobs.sweep,
            trigger="interval",
            seconds=self._sweep_seconds,
            args=(lifecycle,),
            id=SWEEP_JOB,
            replace_existing=True,
            next_run_time=datetime.now(UTC),
        )
        self._scheduler.add_job(
            jobs.reconcile,
            trigger="interval",
            seconds=RECONCILE_EVERY_SECONDS,
            args=(lifecycle,),
            id=RECONCILE_JOB,
            replace_existing=True,
            next_run_time=datetime.now(UTC),
        )
        log.info("scheduler started with %d timers", len(self.job_ids()) - 2)

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
