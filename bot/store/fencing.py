"""Fencing: scheduler work carries the leader epoch it started under; PostgreSQL refuses it
once a newer leader exists.

The leader lease (`scheduler.leadership`) is a row in `leash_leader` whose epoch grows by one
at every takeover. A scheduler job runs inside `fenced(epoch)`; every database transaction it
opens reads that row when it begins (so stale work stops early) and again `FOR SHARE` just
before it commits, and raises `FencedOutError` when the epoch is no longer its own. The share
lock is held only through the commit, so a takeover waits for an old leader's commit in
flight and every later one is refused: no write of an old leader lands after a new one took
over, and nobody's renewal or takeover waits behind a long (or frozen) transaction.

Each process names its database sessions `leash:<process id>` (`application_name`), so a
replica taking over can terminate the sessions of the holder whose lease ran out.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any

LEASE_NAME = "leash-scheduler"
_EPOCH_SQL = "SELECT epoch FROM leash_leader WHERE name = 'leash-scheduler'"

_EPOCH: ContextVar[int | None] = ContextVar("leash_fence_epoch", default=None)


class FencedOutError(Exception):
    """A newer leader holds the lease: this process's scheduler work is refused."""


@cache
def process_id() -> str:
    """This process among the replicas: host, pid and a random tag (fits `application_name`)."""
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{secrets.token_hex(3)}"


def application_name(process: str | None = None) -> str:
    """The `application_name` of a process's database sessions (PostgreSQL keeps 63 bytes)."""
    return f"leash:{process or process_id()}"[:63]


@contextmanager
def fenced(epoch: int) -> Iterator[None]:
    """Run the block's database work under the leader epoch `epoch`."""
    token = _EPOCH.set(epoch)
    try:
        yield
    finally:
        _EPOCH.reset(token)


def current_epoch() -> int | None:
    """The epoch the running code is fenced by (None outside scheduler work)."""
    return _EPOCH.get()


def check_fence(connection: Any, *, committing: bool = False) -> None:
    """Refuse a PostgreSQL transaction of an old leader: as it begins, and as it commits.

    `connection` is the SQLAlchemy Connection (from its "begin" or "commit" event). At commit
    the lease row is read `FOR SHARE`, which holds off a takeover until the commit is done.
    """
    epoch = _EPOCH.get()
    if not epoch:  # None: not scheduler work; 0: a scheduler no lease elected (nothing to fence)
        return
    statement = _EPOCH_SQL + (" FOR SHARE" if committing else "")
    row = connection.exec_driver_sql(statement).first()
    if row is None or int(row[0]) != epoch:
        now = "no lease" if row is None else f"epoch {row[0]}"
        raise FencedOutError(f"leader epoch {epoch} was superseded ({now}): not acting")
