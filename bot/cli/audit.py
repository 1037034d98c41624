"""`leash audit verify` and `leash audit export`: check and ship the keyed audit chain."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NoReturn, TypeVar

import click
from sqlalchemy.engine import make_url
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import logs
from bot.config import ConfigError, Settings, load_settings
from bot.store import audit, audit_keys
from bot.store.engine import create_engine, schema_revision, session_factory
from bot.store.errors import database_unreachable

T = TypeVar("T")
# Exit codes: 1 the chain is broken (tampering found); 2 it could not be checked at all.
BROKEN = 1
CANNOT_CHECK = 2


def _stop(message: str, code: int = CANNOT_CHECK) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        _stop(str(error))


def _existing_database(settings: Settings) -> None:
    """Stop when the SQLite file is not there: opening it would create an empty one."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    if not Path(url.database).exists():
        _stop(
            f"No database at {url.database} (LEASH_DATABASE_URL): nothing to check; "
            "`leash audit` never creates one."
        )


def _with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one session on the existing database; stop when it cannot be read."""
    _existing_database(settings)

    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session:
                await session.connection()  # unreachable: stop here, not "no schema" below
                if await schema_revision(session) is None:
                    _stop("The database has no Leash schema: nothing to check.")
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except Exception as error:
        if not database_unreachable(error):
            raise
        _stop(f"Cannot read the database: {error}")


def _head_option(value: str | None) -> audit.Head | None:
    if value is None:
        return None
    try:
        return audit.Head.parse(value)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--head") from None


def _export_head(path: Path) -> audit.Head:
    """The head an earlier export saw: its last line."""
    last = ""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            last = line.strip() or last
    try:
        record = json.loads(last)
        return audit.Head(int(record["seq"]), str(record["hash"]))
    except (ValueError, KeyError, TypeError):
        raise click.BadParameter(
            f"{path}: its last line is not an exported audit event", param_hint="--since-export"
        ) from None


@click.group(name="audit")
def audit_group() -> None:
    """Verify or export the tamper-evident audit trail."""


@audit_group.command()
@click.option(
    "--head",
    "head_text",
    metavar="SEQ:HASH",
    help="A head published earlier (export, log line): events cut off after it are named too.",
)
@click.option(
    "--since-export",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An earlier `leash audit export` output: its last line is the head to check against.",
)
def verify(head_text: str | None, since_export: Path | None) -> None:
    """Recompute the keyed hash chain; exit 1 naming the first broken event, 2 if unreadable."""
    if head_text is not None and since_export is not None:
        raise click.UsageError("give --head or --since-export, not both")
    published = _head_option(head_text)
    if since_export is not None:
        published = _export_head(since_export)
    settings = _settings()
    try:
        key = audit_keys.for_checking(settings)
    except ConfigError as error:
        _stop(str(error))
    result = _with_session(
        settings, lambda session: audit.verify(session=session, key=key, published=published)
    )
    if not result.ok:
        where = f" at event {result.broken_seq}" if result.broken_seq is not None else ""
        _stop(
            f"Audit chain BROKEN{where}: {result.problem} "
            f"({result.checked} events before it verified).",
            BROKEN,
        )
    matched = f" (head {published} matches)" if published is not None else ""
    click.echo(f"Audit chain OK: {result.checked} events verified{matched}.")


@audit_group.command()
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@click.option(
    "--after-seq",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Only events after this sequence number (the last `seq` of the previous export).",
)
def export(fmt: str, after_seq: int) -> None:
    """Write audit events to stdout, one JSON object per line, in chain order.

    Each line carries `seq`, `prev_hash` and `hash`, so exports shipped in pieces still chain.
    The head (`audit head: SEQ:HASH`) goes to stderr: keep it, `verify --head` checks it.
    """
    settings = _settings()

    async def work(session: AsyncSession) -> audit.Head | None:
        newest: audit.Head | None = None
        async for event in audit.events(session=session, after_seq=after_seq):
            click.echo(audit.to_json_line(event))
            newest = audit.Head(event.seq or 0, event.hash)
        return newest or await audit.head(session=session)

    newest = _with_session(settings, work)
    click.echo(f"audit head: {newest if newest is not None else '0 (empty chain)'}", err=True)
    if settings.log_format == "json":
        _log_head(settings, newest)


def _log_head(settings: Settings, newest: audit.Head | None) -> None:
    """Also write the head as a JSON log record on stderr, for log shippers."""
    logger = logging.getLogger(audit.log.name)
    handler = logs.handler(settings.log_format, sys.stderr)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        audit.publish_head(newest, via="export")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
