"""Logging set-up: plain text or one JSON object per line, each naming the ids it is about."""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

from bot.domain import log_context

LogFormat = Literal["text", "json"]

HANDLER_NAME = "leash"
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


def configure(*, level: int | str, fmt: LogFormat, stream: TextIO | None = None) -> None:
    """Send every log record at `level` or above to `stream` (stderr) in `fmt`.

    Called again, it replaces the handler it installed before and leaves others alone.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler(fmt, sys.stderr if stream is None else stream))
    root.setLevel(level.upper() if isinstance(level, str) else level)
