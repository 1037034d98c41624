"""`leash audit verify` and `leash audit export`: check and ship the keyed audit chain."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import logs
from bot.cli import database
from bot.cli.exit_codes import FINDINGS, stop
from bot.cli.help import LeashGroup
from bot.config import ConfigError, Settings, load_settings
from bot.store import audit, audit_keys


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        stop(str(error))


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


@click.group(name="audit", cls=LeashGroup)
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
    database.require_existing(settings)  # before the key: its sandbox copy lives beside it
    try:
        key = audit_keys.for_checking(settings)
    except ConfigError as error:
        stop(str(error))
    result = database.read(
        settings, lambda session: audit.verify(session=session, key=key, published=published)
    )
    if not result.ok:
        where = f" at event {result.broken_seq}" if result.broken_seq is not None else ""
        stop(
            f"Audit chain BROKEN{where}: {result.problem} "
            f"({result.checked} events before it verified).",
            FINDINGS,
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

    newest = database.read(settings, work)
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
