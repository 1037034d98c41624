"""Tab completion for the console: command words from the grammar's usage table, then the
identities, open requests and live grants Leash knows, each where the grammar expects one."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bot.commands.grammar.access import USAGE

# Words the console itself understands besides the grammar's commands.
CONSOLE_WORDS = ("as", "quit")
_TOKEN = re.compile(r"\[([^\[\]]*)\]|(<[^<>]*>)|(\S+)")
# Bare words in a usage that stand for a value rather than a keyword to type.
_BARE_PLACEHOLDERS = {"filter": "<identity>", "note": "<note>"}


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """What completion offers for each kind of value, refreshed from the lifecycle."""

    identities: tuple[str, ...] = ()
    requests: tuple[str, ...] = ()
    grants: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    # Full id (an ARN) -> the identity's short name, only where that name is unique.
    short_names: Mapping[str, str] = field(default_factory=dict)

    def values(self, placeholder: str) -> tuple[str, ...]:
        """What may stand for `<placeholder>` (nothing for free text such as a reason)."""
        return {
            "<identity>": self.identities,
            "<request-id>": self.requests,
            "<grant-id>": self.grants,
            "<user>": self.users,
        }.get(placeholder, ())

    def shorten(self, command: str) -> str:
        """`command` with each full id whose short name is unique written as that name."""
        return " ".join(self.short_names.get(word, word) for word in command.split(" "))


Slot = frozenset[str]  # the keywords and <placeholders> one word position accepts


def _slot(token: re.Match[str]) -> Slot:
    bracketed, placeholder, bare = token.groups()
    if placeholder is not None:
        return frozenset({placeholder})
    text = (bracketed if bracketed is not None else bare).split()[0] if (bracketed or bare) else ""
    if text.startswith("<"):  # `[<identity>]`, `[on <resource…>]` starts with `on`
        return frozenset({text if text.endswith(">") else text + ">"})
    return frozenset(_BARE_PLACEHOLDERS.get(part, part) for part in text.split("|") if part)


def usage_forms(usage: Mapping[str, str] = USAGE) -> dict[str, list[tuple[Slot, ...]]]:
    """Each verb's forms as word slots after the verb, read from the grammar's usage table."""
    forms: dict[str, list[tuple[Slot, ...]]] = {}
    for verb, text in usage.items():
        for alternative in text.split("  |  "):
            words = alternative.split("  (")[0]  # drop the explanation in parentheses
            slots = tuple(_slot(token) for token in _TOKEN.finditer(words))
            if slots and verb in slots[0]:
                forms.setdefault(verb, []).append(slots[1:])
    return forms


def _accepts(slot: Slot, word: str) -> bool:
    return any(option.startswith("<") for option in slot) or word.lower() in slot


def _candidates(slot: Slot, vocabulary: Vocabulary) -> Iterable[str]:
    for option in sorted(slot):
        if option.startswith("<"):
            yield from vocabulary.values(option)
        else:
            yield option


class Completer:
    """Completes the word being typed, given the words before it on the line."""

    def __init__(self, usage: Mapping[str, str] = USAGE) -> None:
        self._forms = usage_forms(usage)
        self.vocabulary = Vocabulary()

    @property
    def verbs(self) -> tuple[str, ...]:
        return (*self._forms, *CONSOLE_WORDS)

    def matches(self, before: str, word: str) -> list[str]:
        """Every completion of `word`; `before` is the line up to the word's first character."""
        typed = before.split()
        if typed and typed[0] == "/leash":
            typed = typed[1:]
        if not typed:
            options: Iterable[str] = self.verbs
        elif typed[0].lower() == "as" and len(typed) == 1:
            options = self.vocabulary.users
        else:
            options = self._after(typed[0].lower(), typed[1:])
        folded = word.lower()
        found = dict.fromkeys(o for o in options if o.lower().startswith(folded))
        return sorted(found)

    def _after(self, verb: str, typed: list[str]) -> list[str]:
        """What may follow `verb` and the words already typed after it, in any of its forms."""
        position = len(typed)
        options: list[str] = []
        for slots in self._forms.get(verb, []):
            if position >= len(slots):
                continue
            if all(_accepts(slot, word) for slot, word in zip(slots, typed, strict=False)):
                options.extend(_candidates(slots[position], self.vocabulary))
        return options
