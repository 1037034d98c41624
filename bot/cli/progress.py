"""Progress on long work (discovery, the usage scan): a live bar when stderr is a terminal,
nothing at all when it is piped or redirected, so scripts read only results.

The command says each failure itself, one line each; the loggers' warnings about the same
failures are held back meanwhile, so they are not said twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from bot.app import Leash
from bot.inventory.refresh import InventoryReport

T = TypeVar("T")
_POLL_SECONDS = 0.25


def shown() -> bool:
    """Whether progress is shown: only to a person, on a terminal."""
    return sys.stderr.isatty()


@contextlib.contextmanager
def failures_said_once() -> Iterator[None]:
    """Hold back Leash's warnings while the command reports each failure itself."""
    logger = logging.getLogger("leash")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


async def track(
    work: Awaitable[T],
    description: str,
    *,
    total: int | None = None,
    completed: Callable[[], Awaitable[int]] | None = None,
) -> T:
    """Await `work`, with a bar (`completed()` of `total`) or a spinner on a terminal."""
    task = asyncio.ensure_future(work)
    if not shown():
        return await task
    columns: list[ProgressColumn] = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    columns.append(TimeElapsedColumn())
    try:
        with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
            bar = progress.add_task(description, total=total)
            while not task.done():
                await asyncio.wait({task}, timeout=_POLL_SECONDS)
                if completed is not None and not task.done():
                    progress.update(bar, completed=await completed())
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return task.result()


async def discover(leash: Leash) -> InventoryReport:
    """Discovery, with progress (and its counts after, on a terminal)."""
    report = await track(leash.discover(), "Discovering identities")
    if shown():
        click.echo(
            f"Discovered {report.found} identities ({report.agents} AI agents, "
            f"{report.unowned_agents} without an owner).",
            err=True,
        )
    return report
