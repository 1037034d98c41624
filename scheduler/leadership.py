"""Leader election: exactly one process per database runs the scheduler; the others only serve."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

import asyncpg
from sqlalchemy.engine import make_url

log = logging.getLogger("leash.leadership")

LOCK_NAME = "leash-scheduler"
# The first 8 bytes of sha256("leash-scheduler") as a signed 64-bit int (see `advisory_key`).
ADVISORY_KEY = -1919876312993312982
RETRY_SECONDS = 5.0
CHECK_SECONDS = 5.0
QUERY_TIMEOUT_SECONDS = 3.0
# Make the server drop a silently vanished leader's session (and so its lock) within ~10 s.
KEEPALIVES = {
    "tcp_keepalives_idle": "4",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
}

# Followers tell the leader about timers they armed (a grant applied or extended here) on this
# PostgreSQL channel, so it revokes on time rather than at its next sweep.
TIMER_CHANNEL = "leash_timers"

Hook = Callable[[], Awaitable[None]]
TimerHook = Callable[[str, datetime], None]


def advisory_key(name: str = LOCK_NAME) -> int:
    """The fixed 64-bit PostgreSQL advisory-lock key derived from a name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class _Lock(Protocol):
    """One way of holding the scheduler lock."""

    async def try_acquire(self) -> bool: ...

    async def check(self) -> bool: ...

    async def release(self) -> None: ...

    def why_follower(self) -> str: ...

    def follower_notice(self) -> str: ...

    async def listen(self, on_timer: TimerHook) -> None: ...

    async def publish(self, grant_id: str, at: datetime) -> bool: ...


class _NoChannel:
    """No other process can be told about a timer: the leader's sweep is the backstop."""

    async def listen(self, on_timer: TimerHook) -> None:
        return None

    async def publish(self, grant_id: str, at: datetime) -> bool:
        return False


class _MemoryLock(_NoChannel):
    """In-memory SQLite: no other process can share the database, so always leader."""

    async def try_acquire(self) -> bool:
        return True

    async def check(self) -> bool:
        return True

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

    async def check(self) -> bool:
        return self._file is not None

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


class _PostgresLock:
    """PostgreSQL: a session advisory lock on a dedicated asyncpg connection."""

    def __init__(self, dsn: str, *, timeout: float) -> None:
        self._dsn = dsn
        self._timeout = timeout
        self._connection: asyncpg.Connection[Any] | None = None
        self._unreachable: str | None = None
        # One query at a time on the dedicated connection (asyncpg allows no more).
        self._busy = asyncio.Lock()

    async def _connected(self) -> asyncpg.Connection[Any]:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(
                self._dsn,
                timeout=self._timeout,
                server_settings={"application_name": LOCK_NAME, **KEEPALIVES},
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
                won = await connection.fetchval(
                    "SELECT pg_try_advisory_lock($1)", ADVISORY_KEY, timeout=self._timeout
                )
        except Exception as error:  # any failure means this session cannot lead
            self._drop()
            self._unreachable = f"{type(error).__name__}: {error}"
            return False
        self._unreachable = None
        return bool(won)

    async def check(self) -> bool:
        connection = self._connection
        if connection is None or connection.is_closed():
            return False  # a new session would not hold the lock
        try:
            async with self._busy:
                await connection.fetchval("SELECT 1", timeout=self._timeout)
        except Exception as error:  # any failure means this session cannot lead
            log.warning("scheduler lock connection failed: %s: %s", type(error).__name__, error)
            self._drop()
            return False
        return True

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None or connection.is_closed():
            return
        try:
            # Closing the session releases the advisory lock with it.
            await connection.close(timeout=self._timeout)
        except Exception:
            connection.terminate()

    async def listen(self, on_timer: TimerHook) -> None:
        """As leader: arm the timers other replicas publish (on the lock's own connection)."""

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
        return "postgresql advisory lock held elsewhere"

    def follower_notice(self) -> str:
        if self._unreachable:
            return f"cannot reach PostgreSQL for the scheduler lock ({self._unreachable})"
        return (
            "another Leash replica holds the scheduler lock; this one serves HTTP only "
            "and takes over if that one goes"
        )


def _lock_for(database_url: str, timeout: float) -> _Lock:
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or url.query.get("mode") == "memory":
            return _MemoryLock()
        return _FileLock(Path(database).resolve())
    if backend == "postgresql":
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return _PostgresLock(dsn, timeout=timeout)
    raise ValueError(f"no scheduler lock for database backend {backend!r}")


class Leadership:
    """Holds (or waits for) the scheduler lock of one database and starts/stops the scheduler."""

    def __init__(
        self,
        database_url: str,
        *,
        retry_seconds: float = RETRY_SECONDS,
        check_seconds: float = CHECK_SECONDS,
        timeout: float = QUERY_TIMEOUT_SECONDS,
    ) -> None:
        self._lock = _lock_for(database_url, timeout)
        self._retry_seconds = retry_seconds
        self._check_seconds = check_seconds
        self._leader = False
        self._started = False
        self._noticed = ""
        self._on_elected: Hook | None = None
        self._on_deposed: Hook | None = None
        self._on_timer: TimerHook | None = None
        self._task: asyncio.Task[None] | None = None
        self._publishing: set[asyncio.Task[bool]] = set()

    @property
    def is_leader(self) -> bool:
        return self._leader

    def describe(self) -> str:
        """One line for status output: 'leader', 'follower (why)', or 'not started'."""
        if self._leader:
            return "leader"
        if not self._started:
            return "not started"
        return f"follower ({self._lock.why_follower()})"

    async def start(
        self, on_elected: Hook, on_deposed: Hook, on_timer: TimerHook | None = None
    ) -> None:
        """Try once now (so a lone process leads before this returns), then keep trying.

        `on_timer` is called, while this process leads, for every timer another replica
        `forward`s (PostgreSQL only).
        """
        if self._started:
            return
        self._started = True
        self._on_elected, self._on_deposed, self._on_timer = on_elected, on_deposed, on_timer
        try:
            await self._attempt()
        except BaseException:
            self._started = False
            raise
        self._task = asyncio.create_task(self._run(), name="leash-leadership")

    async def _attempt(self) -> None:
        if not await self._lock.try_acquire():
            notice = self._lock.follower_notice()
            if notice != self._noticed:
                log.warning("%s", notice)
                self._noticed = notice
            return
        self._leader, self._noticed = True, ""
        log.info("elected: this process runs the scheduler")
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
        try:
            if was_leader and self._on_deposed is not None:
                await self._on_deposed()
        finally:
            await self._lock.release()

    async def _run(self) -> None:
        while True:
            try:
                if self._leader:
                    await asyncio.sleep(self._check_seconds)
                    if not await self._lock.check():
                        log.warning("lost the scheduler lock; stopping the scheduler here")
                        await self._demote()
                else:
                    await asyncio.sleep(self._retry_seconds)
                    await self._attempt()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("leadership loop error; retrying")

    async def stop(self) -> None:
        """Stop trying, stop the scheduler if this process leads, and release the lock."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._publishing:
            await asyncio.wait(set(self._publishing), timeout=QUERY_TIMEOUT_SECONDS)
        await self._demote()
        self._started = False
