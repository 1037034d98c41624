"""`python -m bot` is the `leash` command."""

from bot.cli import main

main()
