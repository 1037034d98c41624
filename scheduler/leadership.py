"""Leader election: exactly one process per database runs the scheduler; the others only serve.

On PostgreSQL leadership is a lease with an epoch (`_PostgresLease`): the leader renews it,
a follower takes it over once it has not been renewed for the lease, and a leader that could
not renew for a whole lease (frozen, cut off, database gone) stops acting by itself before
anyone can take over. `Leadership.may_act` is asked before every scheduler job; the epoch it
returns fences the job's database work (`bot.fencing`). On SQLite one process holds a file
lock; in memory there is only one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import IO, Any, Protocol

import asyncpg
from sqlalchemy.engine import make_url

from bot.fencing import LEASE_NAME, application_name, process_id

log = logging.getLogger("leash.leadership")

RETRY_SECONDS = 5.0
CHECK_SECONDS = 5.0
LEASE_SECONDS = 15.0
QUERY_TIMEOUT_SECONDS = 3.0
# Make the server drop a silently vanished leader's session (and so its lock) within ~10 s.
KEEPALIVES = {
    "tcp_keepalives_idle": "4",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
}

_INSTANCES = itertools.count(1)

# Followers tell the leader about timers they armed (a grant applied or extended here) on this
# PostgreSQL channel, so it revokes on time rather than at its next sweep.
TIMER_CHANNEL = "leash_timers"

Hook = Callable[[], Awaitable[None]]
TimerHook = Callable[[str, datetime], None]


class Renewal(Enum):
    """What a leader's periodic check found."""

    RENEWED = "renewed"
    LOST = "lost"  # a newer leader exists, or the lease ran out: stop at once
    UNKNOWN = "unknown"  # the database did not answer: lead until the lease would have ended


class _Lock(Protocol):
    """One way of holding the scheduler lock."""

    @property
    def epoch(self) -> int: ...

    @property
    def lease_seconds(self) -> float: ...

    async def try_acquire(self) -> bool: ...

    async def check(self) -> Renewal: ...

    async def release(self) -> None: ...

    def why_follower(self) -> str: ...

    def follower_notice(self) -> str: ...

    async def listen(self, on_timer: TimerHook) -> None: ...

    async def publish(self, grant_id: str, at: datetime) -> bool: ...


class _NoChannel:
    """No other process can be told about a timer: the leader's sweep is the backstop.

    Nor is there an epoch: on SQLite no other process can run the scheduler at all.
    """

    epoch = 0
    lease_seconds = math.inf

    async def listen(self, on_timer: TimerHook) -> None:
        return None

    async def publish(self, grant_id: str, at: datetime) -> bool:
        return False


class _MemoryLock(_NoChannel):
    """In-memory SQLite: no other process can share the database, so always leader."""

    async def try_acquire(self) -> bool:
        return True

    async def check(self) -> Renewal:
        return Renewal.RENEWED

    async def release(self) -> None:
        return None

    def why_follower(self) -> str:
        return "never"

    def follower_notice(self) -> str:
        return ""


class _FileLock(_NoChannel):
    """SQLite: an exclusive, non-blocking flock on `<database>.scheduler.lock` holding our pid."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + ".scheduler.lock")
        self._file: IO[str] | None = None
        self._holder = "?"

    async def try_acquire(self) -> bool:
        return self._grab()  # a local, non-blocking call: no thread needed

    def _grab(self) -> bool:
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for as long as we lead
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            self._holder = handle.read().strip() or "?"
            handle.close()
            return False
        except BaseException:
            handle.close()
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    async def check(self) -> Renewal:
        return Renewal.RENEWED if self._file is not None else Renewal.LOST

    async def release(self) -> None:
        if self._file is None:
            return
        handle, self._file = self._file, None
        with contextlib.suppress(OSError):
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()

    def why_follower(self) -> str:
        return f"sqlite lock {self.path} held by pid {self._holder}"

    def follower_notice(self) -> str:
        return (
            f"another Leash process (pid {self._holder}) runs the scheduler for {self.database}; "
            "this one serves HTTP only — on SQLite run a single process, "
            "use PostgreSQL for replicas"
        )


class _PostgresLease:
    """PostgreSQL: a lease row (holder, epoch, expiry by the server's clock) on a dedicated
    asyncpg connection, which also carries the timer channel.

    The lease is renewed every check; a follower takes it over once it has not been renewed for
    `lease_seconds`, terminating the stale holder's sessions (a frozen process keeps its TCP
    connections alive, and whatever locks its open transactions hold). Every takeover bumps
    the epoch, which fences the old leader's database work (`bot.fencing`).
    """

    def __init__(self, dsn: str, *, timeout: float, lease_seconds: float) -> None:
        self._dsn = dsn
        self._timeout = timeout
        self._lease = lease_seconds
        # This process, and which of its Leaderships (tests run replicas in one process).
        self._process = process_id()
        self._holder = f"{self._process}#{next(_INSTANCES)}"
        self._epoch = 0
        self._seen_holder = "?"
        self._connection: asyncpg.Connection[Any] | None = None
        self._unreachable: str | None = None
        # One query at a time on the dedicated connection (asyncpg allows no more).
        self._busy = asyncio.Lock()

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def lease_seconds(self) -> float:
        return self._lease

    async def _connected(self) -> asyncpg.Connection[Any]:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(
                self._dsn,
                timeout=self._timeout,
                server_settings={
                    "application_name": application_name(self._process),
                    "lock_timeout": str(int(self._timeout * 1000)),
                    **KEEPALIVES,
                },
            )
        return self._connection

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.terminate()
            self._connection = None

    async def try_acquire(self) -> bool:
        try:
            async with self._busy:
                connection = await self._connected()
                async with connection.transaction():
                    epoch = await self._take(connection)
        except Exception as error:  # any failure means this session cannot lead
            self._drop()
            self._unreachable = f"{type(error).__name__}: {error}"
            return False
        self._unreachable = None
        if epoch is None:
            return False
        self._epoch = epoch
        return True

    async def _take(self, connection: asyncpg.Connection[Any]) -> int | None:
        """Take the lease if it is free or ran out; the new epoch, or None."""
        first = await connection.fetchval(
            "INSERT INTO leash_leader (name, holder, epoch, expires_at) "
            "VALUES ($1, $2, 1, now() + make_interval(secs => $3)) "
            "ON CONFLICT (name) DO NOTHING RETURNING epoch",
            LEASE_NAME,
            self._holder,
            self._lease,
            timeout=self._timeout,
        )
        if first is not None:
            return int(first)
        current = await connection.fetchrow(
            "SELECT holder, epoch, expires_at > now() AS live FROM leash_leader WHERE name = $1",
            LEASE_NAME,
            timeout=self._timeout,
        )
        assert current is not None
        stale = str(current["holder"]).partition("#")[0]
        if current["live"] and current["holder"] != self._holder:
            self._seen_holder = str(current["holder"])
            # A dead process (killed, crashed) has no session left: no need to wait out its
            # lease. A frozen one keeps its connections, so only the lease replaces it.
            gone = stale != self._process and not await connection.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = $1)",
                application_name(stale),
                timeout=self._timeout,
            )
            if not gone:
                return None
            log.warning("the scheduler lease holder %s has no session left; taking over", stale)
        if stale != self._process:
            # Its lease ran out: cut off whatever sessions that process still has (a frozen
            # process's open transactions would hold the audit chain's lock and row locks).
            await connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = $1 AND pid <> pg_backend_pid()",
                application_name(stale),
                timeout=self._timeout,
            )
            log.warning(
                "the scheduler lease of %s ran out (epoch %s); taking over",
                current["holder"],
                current["epoch"],
            )
        taken = await connection.fetchval(
            "UPDATE leash_leader SET holder = $2, epoch = epoch + 1, "
            "expires_at = now() + make_interval(secs => $3) "
            "WHERE name = $1 AND epoch = $4 RETURNING epoch",
            LEASE_NAME,
            self._holder,
            self._lease,
            current["epoch"],
            timeout=self._timeout,
        )
        return None if taken is None else int(taken)

    async def check(self) -> Renewal:
        """Renew the lease; only while it has not run out and no one took it over."""
        try:
            async with self._busy:
                connection = await self._connected()
                renewed = await connection.fetchval(
                    "UPDATE leash_leader SET expires_at = now() + make_interval(secs => $3) "
                    "WHERE name = $1 AND holder = $2 AND epoch = $4 AND expires_at > now() "
                    "RETURNING epoch",
                    LEASE_NAME,
                    self._holder,
                    self._lease,
                    self._epoch,
                    timeout=self._timeout,
                )
        except Exception as error:  # the lease may still hold: the caller bounds how long
            log.warning("could not renew the scheduler lease: %s: %s", type(error).__name__, error)
            self._drop()
            return Renewal.UNKNOWN
        return Renewal.RENEWED if renewed is not None else Renewal.LOST

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None or connection.is_closed():
            return
        try:
            if self._epoch:  # let a follower take over at once
                await connection.execute(
                    "UPDATE leash_leader SET expires_at = now() - interval '1 second' "
                    "WHERE name = $1 AND holder = $2 AND epoch = $3",
                    LEASE_NAME,
                    self._holder,
                    self._epoch,
                    timeout=self._timeout,
                )
            await connection.close(timeout=self._timeout)
        except Exception:
            connection.terminate()

    async def listen(self, on_timer: TimerHook) -> None:
        """As leader: arm the timers other replicas publish (on the lease's own connection)."""

        def received(_connection: object, _pid: int, _channel: str, payload: str) -> None:
            grant_id, _, at = payload.partition(" ")
            try:
                on_timer(grant_id, datetime.fromisoformat(at))
            except ValueError:
                log.warning("ignored a malformed timer notice: %r", payload[:200])

        connection = self._connection
        if connection is not None and not connection.is_closed():
            async with self._busy:
                await connection.add_listener(TIMER_CHANNEL, received)

    async def publish(self, grant_id: str, at: datetime) -> bool:
        """As follower: tell the leader to arm this timer (delivered once it commits here)."""
        try:
            async with self._busy:
                connection = await self._connected()
                await connection.execute(
                    "SELECT pg_notify($1, $2)",
                    TIMER_CHANNEL,
                    f"{grant_id} {at.isoformat()}",
                    timeout=self._timeout,
                )
        except Exception as error:  # the leader's sweep will still find the grant
            log.warning("could not tell the leader about %s's timer: %s", grant_id, error)
            return False
        return True

    def why_follower(self) -> str:
        if self._unreachable:
            return f"database unreachable: {self._unreachable}"
        return f"postgresql scheduler lease held by {self._seen_holder}"

    def follower_notice(self) -> str:
        if self._unreachable:
            return f"cannot reach PostgreSQL for the scheduler lease ({self._unreachable})"
        return (
            f"another Leash replica ({self._seen_holder}) holds the scheduler lease; this one "
            "serves HTTP only and takes over if that one stops renewing it"
        )


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
        self._lock = _lock_for(database_url, min(timeout, check_seconds), lease_seconds)
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
