"""What the request form of every chat surface offers, and how its answers become a request."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

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


class FormKind(StrEnum):
    """What a button must ask before its command can run."""

    DENY = "deny"  # why (the requester sees it)
    EXTEND = "extend"  # how much longer, and why
    ASSIGN = "assign"  # who owns it (backup and team optional)


@dataclass(frozen=True, slots=True)
class ButtonForm:
    """A button's form: its kind and what it is about (a request, grant or identity)."""

    kind: FormKind
    subject: str


def verb_of(command: str) -> str:
    """A button's command's verb (`approve`, `deny`, …): what surfaces label its action by."""
    return command.split(" ", 1)[0]


def form_for(command: str) -> ButtonForm | None:
    """The form a button's command needs first, or None if it runs as it is.

    `deny <request>` lacks its reason, `extend <grant>` how long and why, and
    `owner assign <identity>` the owner: every surface asks for these with a form.
    """
    verb, _, rest = command.partition(" ")
    if verb == "deny" and " because " not in f" {rest} ":
        return ButtonForm(FormKind.DENY, rest.strip())
    if verb == "extend" and len(rest.split()) == 1:
        return ButtonForm(FormKind.EXTEND, rest.strip())
    if verb == "owner" and rest.startswith("assign "):
        return ButtonForm(FormKind.ASSIGN, rest.removeprefix("assign ").strip())
    return None


def filled(form: ButtonForm, values: Mapping[str, str]) -> str:
    """The command a button's form runs once answered (it goes through the grammar's checks).

    A deny without a reason stays as it was, so the grammar words what is missing. The
    values are used as given: the grammar refuses what no command may carry.
    """

    def field(name: str) -> str:
        return values.get(name, "")

    match form.kind:
        case FormKind.DENY:
            command = f"deny {form.subject}"
            return f"{command} because {field('reason')}" if field("reason") else command
        case FormKind.EXTEND:
            return f"extend {form.subject} {field('duration')} because {field('reason')}"
        case FormKind.ASSIGN:
            assigned = f"owner set {form.subject} {field('owner')}"
            if field("backup"):
                assigned += f" backup {field('backup')}"
            if field("team"):
                assigned += f" team {'-'.join(field('team').split())}"
            return assigned
