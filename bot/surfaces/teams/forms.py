"""The Adaptive Card form `request` (with no arguments) answers with in Teams."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.commands.forms import duration_choices
from bot.domain.durations import format_duration
from bot.domain.rules import Rules
from bot.surfaces.teams.render import SCHEMA, VERSION, Card, Element, escape, text_block

FORM = "request"
MAX_IDENTITIES = 100
FIELDS = ("identity", "permission_set", "actions", "resources", "duration", "reason")


def request_form(
    rules: Rules,
    identities: Sequence[tuple[str, str]],
    *,
    values: Mapping[str, str] | None = None,
    error: str | None = None,
) -> Card:
    """The form: identity, permission set or actions, resources, duration, reason.

    `identities` are (label, value) pairs, agents first; `values` and `error` redraw a
    submitted form with what the user typed and why it was refused.
    """
    given = dict(values or {})
    durations = [format_duration(d) for d in duration_choices(rules)]
    default_duration = given.get("duration") or (
        "1h" if "1h" in durations else durations[len(durations) // 2]
    )
    body: list[Element] = [text_block("**Ask for temporary access**", size="Medium")]
    if error:
        body.append(text_block(escape(error), color="Attention"))
    body += [
        _identity_choice(identities, given),
        *([_permission_set_choice(rules, given)] if rules.permission_sets else []),
        _text("actions", "Or custom actions (e.g. s3:GetObject, s3:ListBucket)", given),
        _text("resources", "Resources (optional; ARNs, default all)", given),
        {
            "type": "Input.ChoiceSet",
            "id": "duration",
            "label": "For how long",
            "style": "compact",
            "isRequired": True,
            "errorMessage": "Choose how long you need it.",
            "choices": [{"title": label, "value": label} for label in durations],
            "value": default_duration,
        },
        _text("reason", "Reason (the owner sees this)", given, required=True, multiline=True),
    ]
    return {
        "type": "AdaptiveCard",
        "$schema": SCHEMA,
        "version": VERSION,
        "body": body,
        "actions": [
            {
                "type": "Action.Execute",
                "title": "Ask for approval",
                "verb": FORM,
                "data": {"form": FORM},
                "style": "positive",
            }
        ],
    }


def _identity_choice(identities: Sequence[tuple[str, str]], given: Mapping[str, str]) -> Element:
    if not identities:  # a choice set needs choices: ask for the name instead
        field = _text("identity", "Identity (its name or ARN)", given, required=True)
        return field | {"errorMessage": "Name the identity to elevate."}
    return {
        "type": "Input.ChoiceSet",
        "id": "identity",
        "label": "Identity",
        "style": "filtered",
        "isRequired": True,
        "errorMessage": "Choose the identity to elevate.",
        "choices": [
            {"title": label[:100], "value": value[:300]}
            for label, value in identities[:MAX_IDENTITIES]
        ],
        "value": given.get("identity", ""),
    }


def _permission_set_choice(rules: Rules, given: Mapping[str, str]) -> Element:
    return {
        "type": "Input.ChoiceSet",
        "id": "permission_set",
        "label": "Permission set",
        "style": "compact",
        "isRequired": False,
        "placeholder": "Choose one, or type actions below",
        "choices": [
            {"title": f"{name}: {spec.description}"[:100], "value": name}
            for name, spec in sorted(rules.permission_sets.items())
        ],
        "value": given.get("permission_set", ""),
    }


def _text(
    name: str,
    label: str,
    given: Mapping[str, str],
    *,
    required: bool = False,
    multiline: bool = False,
) -> Element:
    element: Element = {
        "type": "Input.Text",
        "id": name,
        "label": label,
        "isRequired": required,
        "isMultiline": multiline,
        "maxLength": 1000,
        "value": given.get(name, ""),
    }
    if required:
        element["errorMessage"] = f"{name.capitalize()} is required."
    return element


def submitted(data: Mapping[str, object]) -> dict[str, str]:
    """The form's fields from an Action.Execute's data (Teams merges the inputs into it)."""
    return {name: " ".join(str(data.get(name, "") or "").split()) for name in FIELDS}
