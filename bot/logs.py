"""Logging set-up: plain text or one JSON object per line, each naming the ids it is about.

Every record goes through the one handler `configure` installs, so in JSON mode whatever Leash
logs (Python warnings and third-party libraries included) is a JSON line. Libraries speak at
WARNING and above: the cloud SDKs log each HTTP request and its headers at INFO.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

from bot.domain import log_context

LogFormat = Literal["text", "json"]

HANDLER_NAME = "leash"
# Libraries whose INFO (and DEBUG) lines are their own business: request headers, retries,
# every scheduler job run. Their warnings and errors still come through.
LIBRARIES = (
    "azure",
    "msal",
    "msrest",
    "botocore",
    "boto3",
    "s3transfer",
    "urllib3",
    "google",
    "grpc",
    "apscheduler",
    "slack_bolt",
    "slack_sdk",
    "botbuilder",
    "botframework",
    "moto",
    "werkzeug",
    "alembic.runtime.plugins",  # its plugin list at every start (upgrades still show)
)
LIBRARY_LEVEL = logging.WARNING
# aiohttp's access lines are written after a request's context is gone, so they cannot name
# its http_request_id: Leash writes its own (`leash.access`, bot.http.server) instead.
AIOHTTP_ACCESS = "aiohttp.access"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# How the text format names each id, in the order it shows them.
_TEXT_LABELS = {
    "request_id": "request",
    "grant_id": "grant",
    "identity": "identity",
    "http_request_id": "http",
}


class ContextFilter(logging.Filter):
    """Copy the ids bound in context onto each record as it is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in log_context.current().items():
            setattr(record, name, value)
        return True


class TextFormatter(logging.Formatter):
    """The classic one-line format, with the bound ids appended: `... [request=r-1 grant=g-2]`."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        ids = " ".join(
            f"{label}={value}"
            for name, label in _TEXT_LABELS.items()
            if (value := getattr(record, name, None)) is not None
        )
        return f"{line} [{ids}]" if ids else line


def json_formatter() -> logging.Formatter:
    """One JSON object per record: timestamp (UTC, ISO 8601), level, logger, message, ids."""
    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
    )


def handler(fmt: LogFormat, stream: TextIO) -> logging.Handler:
    """A stream handler writing `fmt`, with the context ids on every record."""
    made = logging.StreamHandler(stream)
    made.set_name(HANDLER_NAME)
    made.setFormatter(json_formatter() if fmt == "json" else TextFormatter())
    made.addFilter(ContextFilter())
    return made


def configure(
    *,
    level: int | str,
    fmt: LogFormat,
    stream: TextIO | None = None,
    libraries: int | str = LIBRARY_LEVEL,
) -> None:
    """Send every log record at `level` or above to `stream` (stderr) in `fmt`; the
    LIBRARIES' records only at `libraries` and `level` or above; Python warnings as records.

    Called again, it replaces the handler it installed before and leaves others alone.
    """
    leash_level = _number(level)  # an unknown level raises before anything changes
    quietest = max(_number(libraries), leash_level)  # a library never says more than Leash
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler(fmt, sys.stderr if stream is None else stream))
    root.setLevel(leash_level)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(quietest)
    logging.getLogger(AIOHTTP_ACCESS).setLevel(logging.WARNING)
    logging.captureWarnings(True)  # `warnings.warn` becomes a record of `py.warnings`


def _number(level: int | str) -> int:
    """A level's number, from its number or its name in any case (ValueError when unknown)."""
    if isinstance(level, int):
        return level
    known = logging.getLevelNamesMapping()
    if level.upper() not in known:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(known)}")
    return known[level.upper()]
