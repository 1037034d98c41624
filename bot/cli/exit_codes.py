"""What every `leash` command's exit status means: one table, shown by `leash --help`.

Scripts can rely on it: 0 only when there is nothing to look at, 1 when the command ran and
found something (or part of it failed), 2 when it could not run as asked.
"""

from __future__ import annotations

import sys
import textwrap
from typing import NoReturn

import click

OK = 0
FINDINGS = 1
USAGE = 2

EXIT_CODES: tuple[tuple[int, str], ...] = (
    (OK, "ok: done, and nothing needs attention"),
    (
        FINDINGS,
        "findings or failures: `scan` found an identity that needs action or could not read "
        "one, `audit verify` found the chain broken, `guardrail apply` could not write one, or "
        "the command stopped with an error",
    ),
    (
        USAGE,
        "usage: a bad option or argument, or nothing to work on (no Leash database, no "
        "schema, no audit key, the database unreachable); nothing was read or changed",
    ),
)


def epilog() -> str:
    """The exit-code table for `leash --help` (`\\b`: click keeps its lines as they are)."""
    rows = "\n".join(
        textwrap.fill(meaning, 76, initial_indent=f"  {code}  ", subsequent_indent="     ")
        for code, meaning in EXIT_CODES
    )
    return f"\b\nExit codes:\n{rows}"


def stop(message: str, code: int = USAGE) -> NoReturn:
    """Say why on stderr and exit with `code` (a SystemExit: nothing catches it on the way)."""
    click.echo(message, err=True)
    sys.exit(code)
