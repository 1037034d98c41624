"""Work the Teams surface does after it has answered: tracked so shutdown can wait for it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Background:
    """A set of tasks in flight; a finished task leaves the set by itself."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __bool__(self) -> bool:
        return bool(self._tasks)

    def start(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `work` as a task of its own and keep it until it ends."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def settled(self) -> None:
        """Wait for the tasks in flight now (not those started later, nor the caller)."""
        now = self._tasks - {asyncio.current_task()}
        if now:
            await asyncio.gather(*now, return_exceptions=True)

    async def drain(self) -> None:
        """Wait until no task is left, including those started meanwhile."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
