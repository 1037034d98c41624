"""A grant through a restriction: the restriction's deny is split around what the grant
approved, which is let through on the grant's resources until it expires.

A restriction (`leash-restrict`) denies an identity's unused actions, grouped into wildcards
such as `iam:*` when they are many. Left as it is, it cancels any later grant of an action it
covers. Instead, each approved action it covers becomes an exemption, like the guardrail's:
the restriction keeps denying it on every other resource, and on the grant's resources again
once the grant ends, by itself. A wildcard that covers an exempted action is replaced by the
narrowest prefixes (`iam:Pu*`, `iam:Get*`, …) that cover everything else it denied, read
from AWS's own action data, so nothing else the restriction denied is opened.

Only exact actions and `service:Prefix*` patterns can be split this way (the only shapes a
restriction or a grant has in practice); any other overlap cannot be carved, and the request
is refused before anyone approves it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from bot.domain.catalog import aws_actions
from cloud.base import Exemption


@dataclass(frozen=True, slots=True)
class Carving:
    """The restriction's deny split around its exemptions; `deny` unchanged when none."""

    deny: tuple[str, ...]
    exemptions: tuple[Exemption, ...]


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _exact(pattern: str) -> bool:
    return "*" not in pattern and "?" not in pattern


def _prefix_only(pattern: str) -> bool:
    """`service:Prefix*`: one wildcard, at the end."""
    return "?" not in pattern and pattern.count("*") == 1 and pattern.endswith("*")


def _prefix(pattern: str) -> str:
    return pattern[:-1].lower() if _prefix_only(pattern) else pattern.lower()


def _overlap(first: str, second: str) -> bool:
    """Some action matches both (exact or prefix patterns; other shapes: assumed to)."""
    if _exact(second):
        return _regex(first).fullmatch(second) is not None
    if _exact(first):
        return _regex(second).fullmatch(first) is not None
    if _prefix_only(first) and _prefix_only(second):
        a, b = _prefix(first), _prefix(second)
        return a.startswith(b) or b.startswith(a)
    return True


def _within(denied: str, approved: str) -> str | None:
    """The part of `denied` that `approved` opens, as one pattern; None if not expressible."""
    if not _overlap(denied, approved):
        return None
    if _exact(denied):
        return denied
    if _exact(approved):
        return approved
    if _prefix_only(denied) and _prefix_only(approved):
        return approved if _prefix(approved).startswith(_prefix(denied)) else denied
    return None


def uncarvable(denied: Sequence[str], approved: Sequence[str]) -> tuple[str, ...]:
    """The approved actions whose overlap with the restriction cannot be let through."""
    return tuple(
        action
        for action in approved
        if any(
            _overlap(pattern, action)
            and (_within(pattern, action) is None or not (_exact(pattern) or _prefix_only(pattern)))
            for pattern in denied
        )
    )


def opened(denied: Sequence[str], approved: Sequence[str]) -> tuple[str, ...]:
    """What of the restriction the approved actions would open (to say so on the card)."""
    found = (_within(pattern, action) for pattern in denied for action in approved)
    return tuple(dict.fromkeys(found_one for found_one in found if found_one is not None))


def _split(pattern: str, exempted: Sequence[str]) -> tuple[str, ...]:
    """Patterns covering what `pattern` covers, bar `exempted`, and nothing it does not."""
    touching = [e for e in exempted if _overlap(pattern, e)]
    if not touching:
        return (pattern,)
    if _exact(pattern):
        return ()  # the whole of it is exempted
    service = pattern.partition(":")[0].lower()
    base = len(_prefix(pattern)) - len(service) - 1
    found: list[str] = []
    for action in aws_actions.expand(pattern):
        if any(_regex(e).fullmatch(action.action) for e in touching):
            continue
        name = action.name
        cover = action.action  # the exact action, when no shorter prefix is safe
        for length in range(max(base, 1), len(name)):
            candidate = f"{action.service}:{name[:length]}*"
            if not any(_overlap(candidate, e) for e in touching):
                cover = candidate
                break
        found.append(cover)
    chosen: list[str] = []
    for candidate in sorted(set(found), key=lambda p: (len(p), p.lower())):
        if not any(_prefix_only(c) and _regex(c).fullmatch(candidate) for c in chosen):
            chosen.append(candidate)
    return tuple(sorted(chosen, key=str.lower))


def carve(denied: Sequence[str], grants: Sequence[Exemption]) -> Carving:
    """Split the restriction's `denied` patterns around the approved, live `grants`.

    Each grant is given as one Exemption per approved action (with its resources and
    expiry); what of the restriction it opens becomes an exemption of that part only.
    Raises ValueError for an overlap `uncarvable` reports.
    """
    exemptions: dict[tuple[str, str], Exemption] = {}
    for grant in grants:
        if uncarvable(denied, [grant.action]):
            raise ValueError(f"{grant.action} cannot be let through the restriction")
        for pattern in denied:
            part = _within(pattern, grant.action)
            if part is not None:
                exemptions.setdefault(
                    (part.lower(), grant.grant_id),
                    Exemption(part, grant.expires_at, grant.grant_id, grant.resources),
                )
    parts = [e.action for e in exemptions.values()]
    deny = tuple(dict.fromkeys(p for pattern in denied for p in _split(pattern, parts)))
    ordered = sorted(exemptions.values(), key=lambda e: (e.action.lower(), e.grant_id))
    return Carving(deny=deny, exemptions=tuple(ordered))
