"""What every cloud emulator's state shares: one lock, the world, a settable clock, a call log
and the log of the operations it served, by the permission the real cloud checks for each."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from cloud.sandbox.operation_log import CloudOperation, publish

WorldT = TypeVar("WorldT")
CallT = TypeVar("CallT")


class EmulatorState(Generic[WorldT, CallT]):
    """The world, the clock and the call log, shared by server threads under one lock."""

    def __init__(self, factory: Callable[[Any], WorldT]) -> None:
        self.lock = threading.RLock()
        self._factory = factory  # takes the concrete state (GcpState, AzureState)
        self._sequence = itertools.count(1)
        self._now: datetime | None = None
        self.requests: list[CallT] = []
        self.operations: list[CloudOperation] = []
        self.world = factory(self)

    @contextmanager
    def locked(self) -> Iterator[WorldT]:
        """Hold the lock and yield the current world."""
        with self.lock:
            yield self.world

    def reset(self) -> None:
        """Return to real time, forget the calls, and rebuild the world from the factory."""
        with self.lock:
            self._now = None
            self.requests.clear()
            self.operations.clear()
            self._forget()
            self.world = self._factory(self)

    def _forget(self) -> None:
        """Clear what a subclass counts besides the calls (called under the lock)."""

    def now(self) -> datetime:
        """Return the emulator's time (real time unless set)."""
        with self.lock:
            return self._now or datetime.now(UTC)

    def set_now(self, at: datetime | None) -> None:
        """Fix the emulator's clock at `at` (timezone-aware), or return to real time."""
        if at is not None and at.tzinfo is None:
            raise ValueError("the emulator's clock needs a timezone-aware datetime")
        with self.lock:
            self._now = at

    def record(self, call: CallT) -> None:
        """Append one call to the log."""
        with self.lock:
            self.requests.append(call)

    def record_operation(self, operation: CloudOperation) -> None:
        """Append one served operation to the log and hand it to the operation observers."""
        with self.lock:
            self.operations.append(operation)
        publish(operation)

    def sequence(self) -> int:
        """Return the next number of a counter that never repeats in this process."""
        with self.lock:
            return next(self._sequence)
