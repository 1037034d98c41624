"""Characters no command or reason may carry: controls, text-direction overrides, and invisible
format characters (zero-width spaces and joiners, direction marks, byte-order marks) that would
make what an approver reads differ from what Leash stores."""

from __future__ import annotations

import unicodedata

# Bidirectional embeddings, overrides and isolates reorder what a reader sees ("Trojan Source").
_DIRECTION = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_WHITESPACE = frozenset("\t\n\r")
# Joiners that writing needs (emoji sequences such as 👩‍💻, Persian and Indic scripts): kept in
# prose such as a reason, refused in names, actions and resources.
_JOINERS = frozenset("\u200c\u200d")


def _first_unsafe(text: str, *, prose: bool = False) -> str | None:
    for char in text:
        if char in _WHITESPACE or (prose and char in _JOINERS):
            continue
        if char in _DIRECTION or unicodedata.category(char) in ("Cc", "Cf"):
            return char
    return None


def unsafe_character(text: str) -> str | None:
    """Name the first control, direction or invisible format character in `text` (U+XXXX)."""
    found = _first_unsafe(text)
    return None if found is None else f"U+{ord(found):04X}"


def refusal(text: str, what: str, *, prose: bool = False) -> str | None:
    """The message refusing `text` for `what`, or None when it is safe (`prose`: free text,
    where the zero-width joiners writing needs are kept)."""
    found = _first_unsafe(text, prose=prose)
    if found is None:
        return None
    code = f"U+{ord(found):04X}"
    if found not in _DIRECTION and unicodedata.category(found) == "Cf":
        return f"{what} contains an invisible character ({code}); type it without one."
    return f"{what} contains a control or text-direction character ({code}); type it without one."
