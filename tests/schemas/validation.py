"""Validate Adaptive Cards and the Teams app manifest against Microsoft's vendored schemas.

Offline: each schema is loaded from this directory with the validator of its own draft and a
registry holding only itself, so no `$ref` can reach the network. The README next to each
schema says where it came from.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import validators  # type: ignore[import-untyped]
from referencing import Registry, Resource

HERE = Path(__file__).resolve().parent
CARD_VERSION = "1.5"
# Microsoft's validator, with its default host config, allows 5 actions per list (Teams shows 6).
MAX_ACTIONS = 5
CARD_SCHEMA = HERE / "adaptive-cards" / "1.5.0" / "adaptive-card.json"
CHOICE_STYLES_SOURCE = HERE / "adaptive-cards" / "src" / "enums" / "ChoiceInputStyle.json"
MANIFEST_VERSION = "1.17"
MANIFEST_SCHEMA = HERE / "teams-manifest" / "v1.17" / "MicrosoftTeams.schema.json"

Json = dict[str, Any]


def _load(path: Path) -> Json:
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), path
    return loaded


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def missing_choice_styles() -> list[str]:
    """Styles Microsoft's typed schema dates at or before CARD_VERSION that the compiled
    1.5.0 schema leaves out (`filtered`, added in 1.5, is only in the compiled 1.6.0)."""
    compiled = _load(CARD_SCHEMA)["definitions"]["ChoiceInputStyle"]["anyOf"][0]["enum"]
    styles = []
    for value in _load(CHOICE_STYLES_SOURCE)["values"]:
        dated = {"value": value, "version": "1.0"} if isinstance(value, str) else value
        name, since = dated["value"], dated["version"]
        if _version(since) <= _version(CARD_VERSION) and name not in compiled:
            styles.append(name)
    return styles


def _card_schema() -> Json:
    schema = _load(CARD_SCHEMA)
    style = schema["definitions"]["ChoiceInputStyle"]
    added = missing_choice_styles()
    style["anyOf"] = [{"enum": [*style["anyOf"][0]["enum"], *added]}, *style["anyOf"][1:]]
    return schema


def _validator(schema: Json, uri: str) -> Any:
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    resource = Resource.from_contents(schema)  # its draft, from its own $schema
    registry: Registry[Any] = Registry().with_resource(uri, resource)
    return cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)


@cache
def _card_validator() -> Any:
    schema = _card_schema()
    return _validator(schema, str(schema["id"]))


@cache
def _manifest_validator() -> Any:
    return _validator(_load(MANIFEST_SCHEMA), MANIFEST_SCHEMA.as_uri())


def _schema_problems(validator: Any, document: Mapping[str, Any]) -> list[str]:
    found = sorted(validator.iter_errors(document), key=lambda error: list(error.path))
    return [_reason(error) for error in found]


def _reason(error: Any) -> str:
    """Where and why, from the branch of an anyOf meant for the object's `type` (the others
    fail only because the type is not theirs)."""
    while error.context:
        meant = [e for e in error.context if not _wrong_type(e, error.context)]
        error = max(meant or error.context, key=lambda e: len(e.absolute_path))
    return f"{error.json_path}: {str(error.message)[:300]}"


def _wrong_type(error: Any, siblings: list[Any]) -> bool:
    """Whether the branch this error is from refused the object's `type`."""
    branch = error.relative_schema_path[0] if error.relative_schema_path else None
    return any(
        e.relative_schema_path
        and e.relative_schema_path[0] == branch
        and list(e.relative_path)[-1:] == ["type"]
        for e in siblings
    )


def manifest_problems(document: Mapping[str, Any]) -> list[str]:
    """Why a Teams app manifest fails the v1.17 schema; empty when it is valid."""
    problems = _schema_problems(_manifest_validator(), document)
    if document.get("manifestVersion") != MANIFEST_VERSION:
        problems.append(f"manifestVersion is not {MANIFEST_VERSION}")
    return problems


def card_problems(card: Mapping[str, Any]) -> list[str]:
    """Why an Adaptive Card fails its declared version; empty when it is valid.

    The schema, then the rules Microsoft's `adaptivecards` validator adds to it: the card
    declares the version Leash targets, every id is unique in the card (the cards its
    Action.ShowCard buttons open included), inputs have an id, and a label and an error
    message when they are required, a choice set has choices, and no list has more than
    MAX_ACTIONS actions.
    """
    problems = _schema_problems(_card_validator(), card)
    if card.get("version") != CARD_VERSION:
        problems.append(f"$.version: {card.get('version')!r} is not {CARD_VERSION!r}")
    seen: set[str] = set()
    for where, node in _walk(card, "$"):
        ident = node.get("id")
        kind = str(node.get("type", ""))
        if isinstance(ident, str) and ident:
            if ident in seen:
                problems.append(f"{where}: id {ident!r} is used twice in one card")
            seen.add(ident)
        if kind.startswith("Input."):
            problems.extend(_input_problems(where, node))
        if kind == "Input.ChoiceSet" and not node.get("choices"):
            problems.append(f"{where}: a choice set has no choices")
        actions = node.get("actions")
        if isinstance(actions, list) and len(actions) > MAX_ACTIONS:
            problems.append(f"{where}.actions: {len(actions)} actions, more than {MAX_ACTIONS}")
    return problems


def _walk(node: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every object in a card, with its path; an action's `data` is its own (opaque) business."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key != "data":
                yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")


def _input_problems(where: str, node: Mapping[str, Any]) -> list[str]:
    ident = node.get("id")
    if not ident:
        return [f"{where}: an input has no id"]
    if not node.get("isRequired"):
        return []
    return [
        f"{where}: required input {ident!r} has no {needed}"
        for needed in ("label", "errorMessage")
        if not node.get(needed)
    ]
