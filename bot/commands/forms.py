"""What the request form of every chat surface offers, and how its answers become a request."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta

from bot.access.drafting import RequestInput
from bot.domain.durations import parse_duration
from bot.domain.errors import InvalidDurationError, InvalidInputError
from bot.domain.rules import Rules

OFFERED_DURATIONS = (
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=8),
)


def duration_choices(rules: Rules) -> list[timedelta]:
    """Durations offered in forms: from the minimum up to the longest any tier allows."""
    longest = max(rule.max_duration for rule in rules.tiers.values())
    offered = [d for d in OFFERED_DURATIONS if rules.grants.min_duration <= d <= longest]
    return offered or [rules.grants.min_duration]


def listed(text: str) -> tuple[str, ...]:
    """Split a form field of actions or resources on commas and whitespace."""
    return tuple(part for part in re.split(r"[\s,]+", text) if part)


def request_from_form(values: Mapping[str, str]) -> RequestInput:
    """Turn a submitted request form into a request; a wrong field raises naming the field."""
    permission_set = values.get("permission_set", "").strip()
    actions = listed(values.get("actions", ""))
    if permission_set and actions:
        raise InvalidInputError(
            "Choose a permission set or type actions, not both.", field="actions"
        )
    if not permission_set and not actions:
        raise InvalidInputError(
            "Choose a permission set or type custom actions.", field="permission_set"
        )
    try:
        duration = parse_duration(values.get("duration", "").strip())
    except InvalidDurationError as error:
        raise InvalidDurationError(str(error), field="duration") from None
    return RequestInput(
        identity=values.get("identity", "").strip(),
        duration=duration,
        reason=values.get("reason", "").strip(),
        permission_set=permission_set or None,
        actions=actions,
        resources=listed(values.get("resources", "")),
    )
