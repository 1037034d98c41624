"""Characters no command or reason may carry: controls and text-direction overrides."""

from __future__ import annotations

import unicodedata

# Bidirectional embeddings, overrides and isolates reorder what a reader sees ("Trojan Source").
_DIRECTION = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_WHITESPACE = frozenset("\t\n\r")


def unsafe_character(text: str) -> str | None:
    """Name the first control or direction character in `text` (as U+XXXX), or None."""
    for char in text:
        if char in _DIRECTION or (char not in _WHITESPACE and unicodedata.category(char) == "Cc"):
            return f"U+{ord(char):04X}"
    return None


def refusal(text: str, what: str) -> str | None:
    """The message refusing `text` for `what`, or None when it is safe."""
    found = unsafe_character(text)
    if found is None:
        return None
    return f"{what} contains a control or text-direction character ({found}); type it without one."
