"""PostgreSQL: the scheduler lease, a row with holder, epoch and expiry (see the package)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a lease is used: a SQLite deployment never needs it
    import asyncpg

from bot.store.fencing import LEASE_NAME, application_name, process_id
from scheduler.leadership.locks import Renewal, TimerHook

log = logging.getLogger("leash.leadership")

KEEPALIVES = {
    "tcp_keepalives_idle": "4",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
}

_INSTANCES = itertools.count(1)

# Followers tell the leader about timers they armed (a grant applied or extended here) on this
# PostgreSQL channel, so it revokes on time rather than at its next sweep.
TIMER_CHANNEL = "leash_timers"


class _PostgresLease:
    """PostgreSQL: a lease row (holder, epoch, expiry by the server's clock) on a dedicated
    asyncpg connection, which also carries the timer channel.

    The lease is renewed every check; a follower takes it over once it has not been renewed for
    `lease_seconds`, terminating the stale holder's sessions (a frozen process keeps its TCP
    connections alive, and whatever locks its open transactions hold). Every takeover bumps
    the epoch, which fences the old leader's database work (`bot.store.fencing`).
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
        # The leader's timer channel listener, added again to every new connection.
        self._listener: Any = None
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
            import asyncpg

            self._connection = await asyncpg.connect(
                self._dsn,
                timeout=self._timeout,
                server_settings={
                    "application_name": application_name(self._process),
                    "lock_timeout": str(int(self._timeout * 1000)),
                    **KEEPALIVES,
                },
            )
            if self._listener is not None:  # a renewal reconnected: keep hearing the timers
                await self._connection.add_listener(TIMER_CHANNEL, self._listener)
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
            # Its lease ran out: cut off whatever sessions that process still has in this
            # database (a frozen process's open transactions would hold the audit chain's lock
            # and row locks); never another database's on the same server.
            await connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = $1 AND datname = current_database() "
                "AND pid <> pg_backend_pid()",
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
        self._listener = None
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

        async with self._busy:
            self._listener = received
            connection = self._connection
            if connection is not None and not connection.is_closed():
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
