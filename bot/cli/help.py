"""Help that reads well: `-h` beside `--help`, and command lists that never cut a sentence."""

from __future__ import annotations

from typing import Any

import click

# Children inherit these from the root context, so `-h` works on every command.
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}
# Long enough for any command's first sentence: the list wraps it instead of cutting it.
_SHORT_HELP_LIMIT = 1000


class LeashGroup(click.Group):
    """A group whose command list shows each command's whole first sentence (or its
    `short_help`), wrapped to the terminal, where click would cut it at the column's width."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(_SHORT_HELP_LIMIT)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
