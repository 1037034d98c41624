"""Leader election: exactly one process per database runs the scheduler; the others only serve.

On PostgreSQL leadership is a lease with an epoch (`_PostgresLease`): the leader renews it,
a follower takes it over once it has not been renewed for the lease, and a leader that could
not renew for a whole lease (frozen, cut off, database gone) stops acting by itself before
anyone can take over. `Leadership.may_act` is asked before every scheduler job; the epoch it
returns fences the job's database work (`bot.store.fencing`). On SQLite one process holds a file
lock; in memory there is only one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from scheduler.leadership.locks import Hook, Renewal, TimerHook, _FileLock, _Lock, _MemoryLock
from scheduler.leadership.postgres_lease import _PostgresLease

log = logging.getLogger("leash.leadership")

RETRY_SECONDS = 5.0
CHECK_SECONDS = 5.0
LEASE_SECONDS = 15.0
QUERY_TIMEOUT_SECONDS = 3.0


def _lock_for(database_url: str, timeout: float, lease_seconds: float) -> _Lock:
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or url.query.get("mode") == "memory":
            return _MemoryLock()
        return _FileLock(Path(database).resolve())
    if backend == "postgresql":
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return _PostgresLease(dsn, timeout=timeout, lease_seconds=lease_seconds)
    raise ValueError(f"no scheduler lock for database backend {backend!r}")


class Leadership:
    """Holds (or waits for) the scheduler lease of one database and starts/stops the scheduler."""

    def __init__(
        self,
        database_url: str,
        *,
        retry_seconds: float = RETRY_SECONDS,
        check_seconds: float = CHECK_SECONDS,
        lease_seconds: float = LEASE_SECONDS,
        timeout: float = QUERY_TIMEOUT_SECONDS,
    ) -> None:
        # A query may take a third of the lease (not the check's interval: a check of 0.3 s
        # would give up on a loaded machine and drop the connection each time).
        self._lock = _lock_for(database_url, min(timeout, lease_seconds / 3), lease_seconds)
        self._retry_seconds = retry_seconds
        self._check_seconds = check_seconds
        self._leader = False
        self._started = False
        self._ever_started = False
        self._noticed = ""
        # Until when (monotonic) this process may act as leader without a renewal: the lease
        # counted from before the last renewal was sent, so never later than the database's.
        self._valid_until = 0.0
        self._on_elected: Hook | None = None
        self._on_deposed: Hook | None = None
        self._on_timer: TimerHook | None = None
        self._task: asyncio.Task[None] | None = None
        self._stepping_down: asyncio.Task[None] | None = None
        self._publishing: set[asyncio.Task[bool]] = set()

    @property
    def is_leader(self) -> bool:
        return self._leader

    @property
    def epoch(self) -> int:
        """The epoch of the lease this process holds or last held (0 without a lease)."""
        return self._lock.epoch

    def describe(self) -> str:
        """One line for status output: 'leader', 'follower (why)', or 'not started'."""
        if self._leader:
            return "leader"
        if not self._started:
            return "not started"
        return f"follower ({self._lock.why_follower()})"

    def may_act(self) -> int | None:
        """The epoch to run a scheduler job under, or None when this process must not act.

        Asked before every job: a leader whose lease may have run out since its last renewal
        (it was frozen, or the database did not answer) steps down instead of acting. A
        Leadership never started elects nobody: whoever started the scheduler by hand (a
        one-process tool, a test) decided, and its work is not fenced (epoch 0).
        """
        if not self._ever_started:
            return 0
        if not self._leader:
            return None
        if time.monotonic() >= self._valid_until:
            self.lost("its lease may have run out since the last renewal")
            return None
        return self._lock.epoch

    def lost(self, why: str) -> None:
        """Step down now (a job found a newer epoch, or the lease ran out); safe to repeat."""
        if not self._leader or self._stepping_down is not None:
            return
        log.warning("stepping down from leading the scheduler: %s", why)
        task = asyncio.get_running_loop().create_task(self._step_down())
        self._stepping_down = task

    async def _step_down(self) -> None:
        try:
            await self._demote()
        finally:
            self._stepping_down = None

    async def start(
        self, on_elected: Hook, on_deposed: Hook, on_timer: TimerHook | None = None
    ) -> None:
        """Try once now (so a lone process leads before this returns), then keep trying.

        `on_timer` is called, while this process leads, for every timer another replica
        `forward`s (PostgreSQL only).
        """
        if self._started:
            return
        self._started = self._ever_started = True
        self._on_elected, self._on_deposed, self._on_timer = on_elected, on_deposed, on_timer
        try:
            await self._attempt()
        except BaseException:
            self._started = False
            raise
        self._task = asyncio.create_task(self._run(), name="leash-leadership")

    async def _attempt(self) -> None:
        asked_at = time.monotonic()
        if not await self._lock.try_acquire():
            notice = self._lock.follower_notice()
            if notice != self._noticed:
                log.warning("%s", notice)
                self._noticed = notice
            return
        self._valid_until = asked_at + self._lock.lease_seconds
        self._leader, self._noticed = True, ""
        log.info("elected: this process runs the scheduler (epoch %d)", self._lock.epoch)
        assert self._on_elected is not None
        try:
            if self._on_timer is not None:
                await self._lock.listen(self._on_timer)
            await self._on_elected()
        except BaseException:
            await self._demote()
            raise

    def forward(self, grant_id: str, at: datetime) -> None:
        """From a follower: ask the leader to arm a revoke timer (its sweep is the backstop)."""
        if self._leader or not self._started:
            return
        task = asyncio.get_running_loop().create_task(self._lock.publish(grant_id, at))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _demote(self) -> None:
        was_leader, self._leader = self._leader, False
        self._valid_until = 0.0
        try:
            if was_leader and self._on_deposed is not None:
                await self._on_deposed()
        finally:
            await self._lock.release()

    async def _renew(self) -> None:
        asked_at = time.monotonic()
        renewal = await self._lock.check()
        if renewal is Renewal.RENEWED:
            self._valid_until = asked_at + self._lock.lease_seconds
        elif renewal is Renewal.LOST:
            log.warning("lost the scheduler lease; stopping the scheduler here")
            await self._demote()
        elif time.monotonic() >= self._valid_until:
            log.warning("could not renew the scheduler lease in time; stopping the scheduler")
            await self._demote()

    async def _run(self) -> None:
        while True:
            try:
                if self._leader:
                    await asyncio.sleep(self._check_seconds)
                    if self._leader:
                        await self._renew()
                else:
                    await asyncio.sleep(self._retry_seconds)
                    await self._attempt()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("leadership loop error; retrying")

    async def stop(self) -> None:
        """Stop trying, stop the scheduler if this process leads, and release the lease."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._stepping_down is not None:
            with contextlib.suppress(Exception):
                await self._stepping_down
        if self._publishing:
            await asyncio.wait(set(self._publishing), timeout=QUERY_TIMEOUT_SECONDS)
        await self._demote()
        self._started = False
