"""What the domain needs from outside: a way to tell people, and a clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from bot.domain.messages import Notice


class Notifier(Protocol):
    """Delivers notices to people on whatever chat platform they use."""

    async def notify(self, notice: Notice) -> None:
        """Send a notice to its recipients; must not raise for an unreachable person.

        Args:
            notice: who to tell and what.
        """
        ...


class ChartRenderer(Protocol):
    """Draws the small charts Leash attaches to messages."""

    def render_trend(
        self, title: str, labels: Sequence[str], series: Mapping[str, Sequence[float]]
    ) -> bytes:
        """Draw one line per series over `labels` (e.g. weeks) and return a PNG.

        Args:
            title: the chart's title.
            labels: the x axis, oldest first.
            series: name -> one value per label.
        """
        ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Return the current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FanoutNotifier:
    """Sends each notice to several notifiers (e.g. console and a log)."""

    def __init__(self, notifiers: list[Notifier] | None = None) -> None:
        self._notifiers: list[Notifier] = list(notifiers or [])

    def add(self, notifier: Notifier) -> None:
        self._notifiers.append(notifier)

    async def notify(self, notice: Notice) -> None:
        for notifier in self._notifiers:
            await notifier.notify(notice)


class Timers(Protocol):
    """Keeps in-process timers for grants; the database stays the source of truth."""

    def schedule_revoke(self, grant_id: str, at: datetime) -> None:
        """Arrange for the grant to be revoked at `at` (replacing any earlier timer).

        Args:
            grant_id: the grant.
            at: when it expires.
        """
        ...

    def cancel_revoke(self, grant_id: str) -> None:
        """Drop the grant's timer, if any."""
        ...


class NoTimers:
    """Timers for a process that does not run the scheduler: the leader's sweep catches up."""

    def schedule_revoke(self, grant_id: str, at: datetime) -> None:
        return None

    def cancel_revoke(self, grant_id: str) -> None:
        return None


# The named crash points of the grant lifecycle, in the order a grant passes them (a failure
# drill: `bot.crash_drill` kills Leash at one of them; see there).
CRASH_STEPS = (
    "approved",
    "granted-in-cloud",
    "grant-committed",
    "timer-armed",
    "revoke-claimed",
    "revoked-in-cloud",
    "revoke-committed",
)


class CrashPoints(Protocol):
    """Told each time a grant passes a named step; a drill may end the process there."""

    def reached(self, step: str, *, grant_id: str | None = None) -> None:
        """Called at `step` (one of CRASH_STEPS) of `grant_id`'s lifecycle."""
        ...


class NoCrashes:
    """What production wires: passing a crash point does nothing."""

    def reached(self, step: str, *, grant_id: str | None = None) -> None:
        assert step in CRASH_STEPS, f"unknown crash point {step!r}"
