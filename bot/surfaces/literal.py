"""Keep what people typed from becoming a link on any chat surface."""

from __future__ import annotations

import re

# U+2060 WORD JOINER: invisible, zero width, and not a word boundary, so the text reads and
# copies as typed while no link detector sees a scheme ("https" + "://") or a host ("a.b").
WORD_JOINER = "\u2060"
# What chat clients turn into links on their own: scheme://anything, www.anything.
_LINK = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*:/+|www\.)\S*")
_LINK_PUNCTUATION = re.compile(r"([:/.@])")


def unlinked(text: str) -> str:
    """Text that reads as typed but that no client auto-links (bare URLs, www. hosts)."""
    return _LINK.sub(lambda found: _LINK_PUNCTUATION.sub(rf"\1{WORD_JOINER}", found[0]), text)
