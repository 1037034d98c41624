"""The console's completion, buttons and history path, without a terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.commands.grammar.access import USAGE
from bot.domain.messages import Choice, Reply, Section
from bot.surfaces.console.buttons import ButtonBoard, Press
from bot.surfaces.console.completion import Completer, Vocabulary, usage_forms
from bot.surfaces.console.line_editing import history_path
from bot.surfaces.console.render import card_choices, format_reply

ARN = "arn:aws:iam::123456789012:role/code-review-agent"


def _completer() -> Completer:
    completer = Completer()
    completer.vocabulary = Vocabulary(
        identities=("code-review-agent", "forecast-agent", "forecast-az-agent"),
        requests=("r-aaaa1111", "r-bbbb2222"),
        grants=("g-cccc3333",),
        users=("owner-a", "secops"),
        short_names={ARN: "code-review-agent"},
    )
    return completer


def test_every_verb_of_the_grammar_completes_and_nothing_else() -> None:
    completer = _completer()
    assert set(completer.matches("", "")) == {*USAGE, "as", "quit"}
    assert completer.matches("", "identi") == ["identities"]
    assert completer.matches("", "REQ") == ["request", "requests"]
    assert completer.matches("", "zz") == []


@pytest.mark.parametrize(
    ("before", "word", "expected"),
    [
        ("owner ", "s", ["set", "show"]),
        ("owner show ", "fore", ["forecast-agent", "forecast-az-agent"]),
        ("owner set ", "code", ["code-review-agent"]),
        ("request ", "co", ["code-review-agent"]),
        ("approve ", "", ["r-aaaa1111", "r-bbbb2222"]),
        ("deny ", "r-b", ["r-bbbb2222"]),
        ("revoke ", "", ["g-cccc3333"]),
        ("extend ", "g", ["g-cccc3333"]),
        (
            "grants ",
            "",
            ["all", "code-review-agent", "forecast-agent", "forecast-az-agent", "mine"],
        ),
        ("requests ", "", ["mine", "pending"]),
        ("scan ", "", ["now"]),
        ("scan now ", "f", ["forecast-agent", "forecast-az-agent"]),
        ("guardrail ", "", ["apply", "show"]),
        ("guardrail apply code-review-agent ", "", ["dry-run"]),
        ("token ", "r", ["revoke", "rotate"]),
        ("as ", "", ["owner-a", "secops"]),
        ("/leash ", "whoa", ["whoami"]),
        ("approve r-aaaa1111 ", "", []),  # a note is free text
        ("nonsense ", "", []),
    ],
)
def test_each_word_completes_with_what_the_grammar_expects_there(
    before: str, word: str, expected: list[str]
) -> None:
    assert _completer().matches(before, word) == expected


def test_usage_forms_are_read_from_the_grammar_not_repeated() -> None:
    forms = usage_forms({"owner": "owner show|claim <identity>  |  owner set <identity> <user>"})
    assert forms == {
        "owner": [
            (frozenset({"show", "claim"}), frozenset({"<identity>"})),
            (frozenset({"set"}), frozenset({"<identity>"}), frozenset({"<user>"})),
        ]
    }


def _card() -> Reply:
    return Reply(
        text="dev asks to elevate code-review-agent",
        sections=(
            Section(
                "code-review-agent",
                choices=(Choice("Confirm restrict", f"restrict {ARN} confirm 2f69d8dfc7a7"),),
            ),
        ),
        choices=(Choice("Approve", "approve r-aaaa1111"), Choice("Deny", "deny r-aaaa1111")),
    )


def test_buttons_are_numbered_across_the_card_with_short_names_shown() -> None:
    text = format_reply(_card(), numbered=True, shorten=_completer().vocabulary.shorten)
    assert text.splitlines()[2:] == [
        "        [1] Confirm restrict: restrict code-review-agent confirm 2f69d8dfc7a7",
        "    [2] Approve: approve r-aaaa1111   [3] Deny: deny r-aaaa1111",
    ]
    # Elsewhere (the CLI) buttons keep their plain form.
    assert "[Approve: approve r-aaaa1111]  [Deny: deny r-aaaa1111]" in format_reply(_card())


def test_a_short_name_is_used_only_where_it_is_unique() -> None:
    vocabulary = Vocabulary(short_names={ARN: "code-review-agent"})
    other = "arn:aws:iam::111122223333:role/OrganizationAccountAccessRole"
    assert vocabulary.shorten(f"owner claim {ARN}") == "owner claim code-review-agent"
    assert vocabulary.shorten(f"owner claim {other}") == f"owner claim {other}"


@pytest.mark.parametrize(
    ("typed", "pressed"),
    [
        ("1", Press(command=f"restrict {ARN} confirm 2f69d8dfc7a7")),
        ("2", Press(command="approve r-aaaa1111")),
        ("3 because too broad", Press(command="deny r-aaaa1111 because too broad")),
        ("approve", Press(command="approve r-aaaa1111")),
        ("Approve", Press(command="approve r-aaaa1111")),
        ("confirm", Press(command=f"restrict {ARN} confirm 2f69d8dfc7a7")),
        ("confirm restrict", Press(command=f"restrict {ARN} confirm 2f69d8dfc7a7")),
        ("deny because not now", Press(command="deny r-aaaa1111 because not now")),
        ("4", Press(problem="There is no button 4: the last card has 3 (1-3).")),
        ("0", Press(problem="There is no button 0: the last card has 3 (1-3).")),
        ("approve r-bbbb2222", None),  # a whole command is a command
        ("deny r-aaaa1111 because no", None),
        ("identities", None),
    ],
)
def test_a_button_is_pressed_by_number_or_label(typed: str, pressed: Press | None) -> None:
    board = ButtonBoard()
    board.show(card_choices(_card()))
    assert board.press(typed) == pressed


def test_the_last_card_with_buttons_is_the_one_pressed() -> None:
    board = ButtonBoard()
    assert board.press("1") == Press(problem="There are no buttons to press yet.")
    assert board.press("approve") is None
    board.show(card_choices(_card()))
    board.show(())  # a reply without buttons leaves the card's buttons pressable
    assert board.press("2") == Press(command="approve r-aaaa1111")
    board.show((Choice("Revoke now", "revoke g-cccc3333"),))
    assert board.press("1") == Press(command="revoke g-cccc3333")
    assert board.press("approve") is None


def test_a_label_two_buttons_share_is_pressed_by_number() -> None:
    board = ButtonBoard()
    board.show((Choice("Restrict unused", "restrict a"), Choice("Restrict unused", "restrict b")))
    assert board.press("restrict unused") == Press(
        problem="Several buttons say that: press one by number (1, 2)."
    )


def test_history_lives_in_the_state_directory(tmp_path: Path) -> None:
    home_default = Path.home() / ".local" / "state" / "leash" / "console_history"
    assert history_path({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "leash" / "console_history"
    assert history_path({}) == home_default
    assert history_path({"XDG_STATE_HOME": "relative/dir"}) == home_default  # XDG: ignored


def test_buttons_that_do_not_fit_the_width_go_on_more_lines() -> None:
    reply = Reply(
        text="1 of your agents can do more than it uses",
        choices=(
            Choice("Restrict unused", "restrict support-triage-gcp-agent"),
            Choice("Quarantine", "quarantine support-triage-gcp-agent because finding"),
            Choice("Not mine", "disown support-triage-gcp-agent"),
        ),
    )
    lines = format_reply(reply, numbered=True, width=100).splitlines()[1:]
    assert lines == [
        "    [1] Restrict unused: restrict support-triage-gcp-agent",
        "    [2] Quarantine: quarantine support-triage-gcp-agent because finding",
        "    [3] Not mine: disown support-triage-gcp-agent",
    ]
    assert all(len(line) <= 100 for line in lines)
    wide = format_reply(reply, numbered=True, width=300).splitlines()[1:]
    assert len(wide) == 1
    assert wide[0].startswith("    [1] Restrict unused: ")
