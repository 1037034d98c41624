"""The ways of holding the scheduler lock: the contract, in memory, and a SQLite file lock."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import IO, Protocol

log = logging.getLogger("leash.leadership")

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
