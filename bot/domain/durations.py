"""Parse and print human durations such as `90m`, `1h30m` or `2d`."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.domain.errors import InvalidDurationError

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d{1,6})\s*([smhd])", re.ASCII)
_WHOLE = re.compile(r"(?:\d{1,6}\s*[smhd]\s*)+", re.ASCII)
_MAX = timedelta(days=366)


def parse_duration(text: str) -> timedelta:
    """Turn `45m`, `2h`, `1h30m`, `1d` into a timedelta; refuse anything else."""
    cleaned = text.strip().lower()
    if not cleaned or len(cleaned) > 32 or not _WHOLE.fullmatch(cleaned):
        raise InvalidDurationError(
            f"'{text[:40]}' is not a duration: use a number and a unit, like 30m, 2h or 1h30m."
        )
    parts = _PART.findall(cleaned)
    units = [unit for _, unit in parts]
    if len(set(units)) != len(units):
        raise InvalidDurationError(f"'{text[:40]}' repeats a unit; write it like 1h30m.")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in parts)
    duration = timedelta(seconds=seconds)
    if duration <= timedelta(0):
        raise InvalidDurationError("A duration must be longer than zero.")
    if duration > _MAX:
        raise InvalidDurationError("A duration cannot be longer than a year.")
    return duration


def format_duration(duration: timedelta) -> str:
    """Print a duration the way a user would type it: `1h30m`, `45m`, `20s`."""
    seconds = int(duration.total_seconds())
    if seconds <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
