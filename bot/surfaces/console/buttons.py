"""Buttons on the console: the last card's buttons, pressed by number or by label."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.domain.messages import Choice


@dataclass(frozen=True, slots=True)
class Press:
    """What a typed line pressed: the command to run, or why no button could be pressed."""

    command: str | None = None
    problem: str | None = None


def _label_words(label: str) -> str:
    """A label as it is typed: lower case, without a trailing ellipsis (`Assign to…`)."""
    return " ".join(label.lower().rstrip("….").split())


class ButtonBoard:
    """Remembers the buttons of the last card shown; reads `2`, `2 because …` or `approve`."""

    def __init__(self) -> None:
        self._choices: tuple[Choice, ...] = ()

    @property
    def choices(self) -> tuple[Choice, ...]:
        return self._choices

    def show(self, choices: Sequence[Choice]) -> None:
        """A card with buttons was shown: its buttons are now the ones to press."""
        if choices:
            self._choices = tuple(choices)

    def press(self, text: str) -> Press | None:
        """The button `text` presses, or None when it is not a button press (a command).

        `N` presses the Nth button; `N <more words>` presses it with the words added (`2
        because not needed` for Deny). A label typed alone (`approve`, `confirm`) presses the
        button with that label, and a label followed by `because …` adds the reason.
        """
        head, _, rest = " ".join(text.split()).partition(" ")
        if head.isdigit():
            number = int(head)
            if not self._choices:
                return Press(problem="There are no buttons to press yet.")
            if not 1 <= number <= len(self._choices):
                return Press(
                    problem=f"There is no button {number}: the last card has "
                    f"{len(self._choices)} (1-{len(self._choices)})."
                )
            return Press(command=_with(self._choices[number - 1].command, rest))
        return self._by_label(head.lower(), rest)

    def _by_label(self, head: str, rest: str) -> Press | None:
        """`approve`, `confirm` (for `Confirm restrict`), `deny because …`."""
        typed = f"{head} {rest}".strip().lower()
        numbers = [n for n, c in enumerate(self._choices, 1) if _label_words(c.label) == typed]
        if not numbers:  # the label's first word, when no other button starts with it
            numbers = [n for n, c in enumerate(self._choices, 1) if _first(c.label) == typed]
        more = ""
        if not numbers and rest.lower().startswith("because "):
            numbers = [n for n, c in enumerate(self._choices, 1) if _first(c.label) == head]
            more = rest
        if not numbers:
            return None
        if len(numbers) > 1:
            listed = ", ".join(str(n) for n in numbers)
            return Press(problem=f"Several buttons say that: press one by number ({listed}).")
        return Press(command=_with(self._choices[numbers[0] - 1].command, more))


def _first(label: str) -> str:
    return _label_words(label).partition(" ")[0]


def _with(command: str, more: str) -> str:
    return f"{command} {more}" if more else command
