"""Tell "the database cannot be reached" apart from other errors, and say it the same way."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

UNREACHABLE_MESSAGE = (
    "Leash cannot reach its database right now, so this was not done: nothing was changed "
    "unless a later message says so. Please try again in a minute."
)
# Causes followed before giving up (errors wrap errors: SQLAlchemy -> asyncpg -> OSError).
_MAX_CAUSES = 8
# PostgreSQL's own bounds, set on every session (`bot.store.engine.DatabaseTimeouts`): a lock not
# granted in time, a statement cancelled, a transaction left idle too long. Each means the
# work was not done and can be tried again, exactly as when the database is unreachable.
_TIMED_OUT = frozenset({"55P03", "57014", "25P03"})


def database_unreachable(error: BaseException) -> bool:
    """Say whether `error` (or what caused it) means the database is down, dropped us, or
    gave up on a lock or statement within the bounds Leash sets."""
    seen: BaseException | None = error
    for _ in range(_MAX_CAUSES):
        if seen is None:
            return False
        if isinstance(seen, OperationalError | InterfaceError | PoolTimeoutError):
            return True
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        # Refused or reset connections and connect timeouts (TimeoutError is asyncio's too).
        if isinstance(seen, OSError | TimeoutError):
            return True
        if getattr(seen, "sqlstate", None) in _TIMED_OUT:
            return True
        seen = seen.__cause__ or seen.__context__
    return False
