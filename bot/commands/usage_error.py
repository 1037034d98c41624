"""The error every grammar raises when text does not fit: it shows the right form."""

from __future__ import annotations

from bot.domain.errors import InvalidInputError


class UsageError(InvalidInputError):
    """The text does not follow the grammar; the message shows the right form."""

    code = "usage"


def usage_error(form: str, problem: str) -> UsageError:
    """Say what is wrong and show the command's form."""
    return UsageError(f"{problem} Usage: `{form}`")
