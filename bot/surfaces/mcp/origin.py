"""Which door an agent came through: the `mcp` surface and the MCP client it named.

The client's name and version come from its MCP `initialize` call (or, for `leash mcp`, from
the X-Leash-Client header it sends to the agent API). They are the agent's own words: shown to
owners on the approval card and kept in the audit trail, never used to decide anything. Only a
name, optionally a space and a version, each made of letters, digits, '.', '_' and '-', is kept
(cut to 26 characters, a cut marked '~'): a label of words ("Approved by owner-a"), with a colon
("secops:approved") or a URL would read like Leash's own words on the card, so it is dropped and
the origin is plain `mcp`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

SURFACE = "mcp"
SURFACE_HEADER = "X-Leash-Surface"
CLIENT_HEADER = "X-Leash-Client"
# AccessRequest.origin and AuditEvent.origin hold 32 characters: "mcp (" + label + ")".
MAX_LABEL = 26
_WORD = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_LABEL = re.compile(rf"{_WORD}(?: [A-Za-z0-9._-]+)?")
_CUT = re.compile(rf"{_WORD}(?: [A-Za-z0-9._-]*)?~")  # a label as `client_label` cut it


def client_label(name: object, version: object = None) -> str | None:
    """`name version` as a short label, or None unless both are single plain tokens."""
    if not isinstance(name, str) or not name.strip():
        return None
    parts = [part.strip() for part in (name, version) if isinstance(part, str) and part.strip()]
    label = " ".join(parts)
    if not _LABEL.fullmatch(label):
        return None
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1].rstrip() + "~"


def origin_for(label: str | None) -> str:
    """The origin recorded for an MCP agent: `mcp`, or `mcp (<client> <version>)`."""
    cut = label is not None and len(label) <= MAX_LABEL and _CUT.fullmatch(label) is not None
    checked = label if cut else client_label(label)
    return f"{SURFACE} ({checked})" if checked else SURFACE


def origin_from_headers(headers: Mapping[str, str], default: str) -> str:
    """The origin an agent API call claims: `mcp` (with its client) when it says it came through
    `leash mcp`, else `default`. A malformed claim is ignored, never an error."""
    if headers.get(SURFACE_HEADER, "").strip().lower() != SURFACE:
        return default
    return origin_for(headers.get(CLIENT_HEADER))


def is_mcp(origin: str) -> bool:
    """Whether an origin recorded by `origin_for` names the MCP surface."""
    return origin == SURFACE or origin.startswith(f"{SURFACE} (")
