"""`python -m bot` is the `leash` command."""

from bot.cli.main import main

main()
