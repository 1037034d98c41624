"""Read-only commands open the database that is there, and never create or migrate one.

Opening a missing SQLite file would create an empty one (and `migrate` would give it a
schema), so `leash grants` in the wrong directory used to report "no grants" and leave a
`leash.db` behind. Here a missing file, a database with no Leash schema, one behind this build
(run `leash migrate`) or one that cannot be reached stops the command with exit status 2.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.cli.exit_codes import USAGE, stop
from bot.config import Settings
from bot.store.engine import create_engine, head_revision, schema_revision, session_factory
from bot.store.errors import database_unreachable

T = TypeVar("T")


def require_existing(settings: Settings) -> None:
    """Stop when the SQLite file is not there: opening it would create an empty one."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    path = Path(url.database)
    if not path.exists():
        stop(
            f"no Leash database at {path.absolute()}; run `leash serve` first or set "
            "LEASH_DATABASE_URL",
            USAGE,
        )


async def _check_schema(session: AsyncSession) -> None:
    await session.connection()  # unreachable: stop there, not at "no schema" below
    revision = await schema_revision(session)
    if revision is None:
        stop("The database has no Leash schema: nothing to read.", USAGE)
    if revision < head_revision():
        stop(
            f"The database's schema is at {revision}, this Leash reads {head_revision()}: "
            "run `leash migrate` first.",
            USAGE,
        )


def read(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one session on the existing database; stop when it cannot be read."""
    require_existing(settings)

    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session:
                await _check_schema(session)
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except Exception as error:
        if not database_unreachable(error):
            raise
        stop(f"Cannot read the database: {error}", USAGE)
