"""APScheduler wiring: timers derived from the database, rebuilt at start."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.lifecycle.service import Lifecycle
from bot.store.errors import database_unreachable
from bot.store.fencing import FencedOutError, fenced
from scheduler import jobs

log = logging.getLogger("leash.scheduler")

SWEEP_JOB = "sweep"
RECONCILE_JOB = "reconcile"
NIGHTLY_JOB = "nightly"
DIGEST_JOB = "weekly-digest"
AUDIT_HEAD_JOB = "audit-head"
FIXED_JOBS = (SWEEP_JOB, RECONCILE_JOB, NIGHTLY_JOB, DIGEST_JOB, AUDIT_HEAD_JOB)
RECONCILE_EVERY_SECONDS = 3600
AUDIT_HEAD_EVERY_SECONDS = 3600
STOP_GRACE_SECONDS = 10.0
CATCH_UP_SECONDS = 10.0


def _fenced_out(error: BaseException) -> FencedOutError | None:
    """The FencedOutError behind `error` (the database wraps what its hooks raise), if any."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None or isinstance(seen, FencedOutError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _report_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("revoking the overdue grants failed", exc_info=task.exception())


def revoke_job_id(grant_id: str) -> str:
    return f"revoke:{grant_id}"


def _new_scheduler() -> AsyncIOScheduler:
    # In memory on purpose: the database is the source of truth and timers are rebuilt from it.
    return AsyncIOScheduler(
        timezone=UTC,
        job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
    )


class Runner:
    """Owns the one AsyncIOScheduler of this process; implements the domain's Timers port."""

    def __init__(
        self,
        *,
        sweep_seconds: float,
        catch_up_seconds: float = CATCH_UP_SECONDS,
        forward: Callable[[str, datetime], None] | None = None,
        gate: Callable[[], int | None] | None = None,
        lost: Callable[[str], None] | None = None,
    ) -> None:
        """`forward` hands timers armed while this process does not lead to the one that does.

        `gate` is asked before every job for the leader epoch to run it under (None: this
        process must not act, so the job does nothing); `lost` is told when the database
        refused a job because a newer leader exists. `start` waits at most `catch_up_seconds`
        for the revocations that fell due while no process led.
        """
        self._sweep_seconds = sweep_seconds
        self._catch_up_seconds = catch_up_seconds
        self._forward = forward
        self._gate = gate
        self._lost = lost
        self._lifecycle: Lifecycle | None = None
        self._active: set[asyncio.Task[Any]] = set()
        self._scheduler = _new_scheduler()
        self._database_down = False

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    async def _tracked(self, job: Callable[..., Awaitable[None]], *args: Any) -> None:
        """Run a job as a task `stop()` can wait for, so no job outlives the database engine."""
        task = asyncio.current_task()
        assert task is not None
        epoch = self._gate() if self._gate is not None else 0
        if epoch is None:
            log.warning("%s not run: this process no longer leads the scheduler", job.__name__)
            return
        self._active.add(task)
        try:
            with fenced(epoch):
                await job(*args)
        except Exception as error:
            fenced_out = _fenced_out(error)
            if fenced_out is not None:
                log.warning("%s refused by the database: %s", job.__name__, fenced_out)
                if self._lost is not None:
                    self._lost(str(fenced_out))
                return
            if not database_unreachable(error):
                raise
            # Every job reads its work from the database: the next sweep catches up on it.
            if not self._database_down:
                log.warning(
                    "database unreachable, %s waits for the next sweep: %s", job.__name__, error
                )
            self._database_down = True
            return
        finally:
            self._active.discard(task)
        if self._database_down:
            self._database_down = False
            log.warning("database reachable again: %s ran, the scheduler caught up", job.__name__)

    def _add(self, job: Callable[..., Awaitable[None]], *args: Any, **trigger: Any) -> None:
        self._scheduler.add_job(self._tracked, args=(job, *args), replace_existing=True, **trigger)

    def schedule_revoke(self, grant_id: str, at: datetime) -> None:
        if self._lifecycle is None:
            if self._forward is not None:
                self._forward(grant_id, at)
            return
        self._add(
            jobs.expire_grant,
            self._lifecycle,
            grant_id,
            trigger="date",
            run_date=at,
            id=revoke_job_id(grant_id),
        )

    def cancel_revoke(self, grant_id: str) -> None:
        job = self._scheduler.get_job(revoke_job_id(grant_id))
        if job is not None:
            job.remove()

    def next_run(self, job_id: str) -> datetime | None:
        """When a job runs next (None when there is no such job)."""
        job = self._scheduler.get_job(job_id)
        return None if job is None else job.next_run_time

    def job_ids(self) -> list[str]:
        return sorted(job.id for job in self._scheduler.get_jobs())

    async def start(self, lifecycle: Lifecycle) -> None:
        """Start, revoke what fell due meanwhile (bounded), re-arm every live grant's timer,
        and sweep at once to catch up on the rest of the downtime."""
        if self._scheduler.running:
            return
        self._lifecycle = lifecycle
        # A fresh scheduler per start, so a process that lost leadership can lead again.
        self._scheduler = _new_scheduler()
        self._scheduler.start()
        await self._catch_up(lifecycle)
        for grant_id, expires_at in await lifecycle.sweep.timers_to_rebuild():
            self.schedule_revoke(grant_id, expires_at)
        now = datetime.now(UTC)
        self._add(
            jobs.sweep,
            lifecycle,
            trigger="interval",
            seconds=self._sweep_seconds,
            id=SWEEP_JOB,
            next_run_time=now,
        )
        self._add(
            jobs.reconcile,
            lifecycle,
            trigger="interval",
            seconds=RECONCILE_EVERY_SECONDS,
            id=RECONCILE_JOB,
            next_run_time=now,
        )
        hour, minute = lifecycle.rules.schedules.nightly_at.split(":")
        self._add(
            jobs.nightly,
            lifecycle,
            trigger="cron",
            hour=int(hour),
            minute=int(minute),
            id=NIGHTLY_JOB,
        )
        weekday, at = lifecycle.rules.schedules.digest_at.split(" ")
        hour, minute = at.split(":")
        self._add(
            jobs.weekly_digest,
            lifecycle,
            trigger="cron",
            day_of_week=weekday,
            hour=int(hour),
            minute=int(minute),
            id=DIGEST_JOB,
        )
        self._add(
            jobs.publish_audit_head,
            lifecycle,
            trigger="interval",
            seconds=AUDIT_HEAD_EVERY_SECONDS,
            id=AUDIT_HEAD_JOB,
            next_run_time=now,
        )
        log.info("scheduler started with %d timers", len(self.job_ids()) - len(FIXED_JOBS))

    async def _catch_up(self, lifecycle: Lifecycle) -> None:
        """Revoke the grants overdue now before `start` returns (and the process serves), so no
        one is shown them live; past the bound they finish in the background, tracked."""
        task = asyncio.create_task(self._tracked(jobs.revoke_overdue, lifecycle))
        task.add_done_callback(_report_failure)
        done, _ = await asyncio.wait({task}, timeout=self._catch_up_seconds)
        if not done:
            log.warning(
                "overdue grants still being revoked after %.0f s; serving meanwhile",
                self._catch_up_seconds,
            )

    async def stop(self) -> None:
        """Stop scheduling; let running jobs finish (bounded), then cancel what is left."""
        # AsyncIOScheduler shuts down on the loop's next turn: until then it still says
        # running, so a second stop (step-down, then close) is told apart by the lifecycle.
        if self._lifecycle is None or not self._scheduler.running:
            return
        self._lifecycle = None  # a stopped runner forwards timers to the leader (its sweep too)
        # Pause first: shutting the executor down would cancel jobs mid-transaction.
        self._scheduler.pause()
        if self._active:
            await asyncio.wait(set(self._active), timeout=STOP_GRACE_SECONDS)
        leftover = set(self._active)
        self._scheduler.shutdown(wait=False)
        if leftover:
            await asyncio.wait(leftover, timeout=STOP_GRACE_SECONDS)
