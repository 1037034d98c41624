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
    return [f"{error.json_path}: {_message(error)}" for error in found]


def _message(error: Any) -> str:
    """The deepest reason of an anyOf/allOf failure, which is what names the wrong property."""
    while error.context:
        error = min(error.context, key=lambda e: (-len(e.path), e.validator == "enum"))
    return str(error.message)[:300]


def manifest_problems(document: Mapping[str, Any]) -> list[str]:
    """Why a Teams app manifest fails the v1.17 schema; empty when it is valid."""
    problems = _schema_problems(_manifest_validator(), document)
    if document.get("manifestVersion") != MANIFEST_VERSION:
        problems.append(f"manifestVersion is not {MANIFEST_VERSION}")
    return problems


def card_problems(card: Mapping[str, Any]) -> list[str]:
    """Why an Adaptive Card fails its declared version; empty when it is valid.

    The schema, then the rules Microsoft's `adaptivecards` validator adds to it: the card
    declares the version Leash targets, input ids are present and unique within each card,
    and required inputs have a label and an error message.
    """
    problems = _schema_problems(_card_validator(), card)
    if card.get("version") != CARD_VERSION:
        problems.append(f"$.version: {card.get('version')!r} is not {CARD_VERSION!r}")
    for path, each in _cards(card, "$"):
        problems.extend(_input_problems(path, each))
    return problems


def _cards(card: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """A card and the cards its Action.ShowCard buttons open, each with its path."""
    yield path, card
    for where, node in _walk(card, path):
        shown = node.get("card")
        if node.get("type") == "Action.ShowCard" and isinstance(shown, dict):
            yield from _cards(shown, f"{where}.card")


def _walk(node: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every object in a card, outside the cards its Action.ShowCard buttons open."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if not (key == "card" and node.get("type") == "Action.ShowCard"):
                yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")


def _input_problems(path: str, card: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for where, node in _walk(card, path):
        if not str(node.get("type", "")).startswith("Input."):
            continue
        ident = node.get("id")
        if not ident:
            problems.append(f"{where}: an input has no id")
        elif ident in seen:
            problems.append(f"{where}: input id {ident!r} is used twice in one card")
        seen.add(str(ident))
        if node.get("isRequired"):
            for needed in ("label", "errorMessage"):
                if not node.get(needed):
                    problems.append(f"{where}: required input {ident!r} has no {needed}")
    return problems
