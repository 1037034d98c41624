"""Line editing for the console on a terminal: the standard library's readline (history,
arrows, Ctrl-R, Tab completion), reading in a thread so the event loop keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

log = logging.getLogger("leash.console")

HISTORY_LENGTH = 1000  # lines kept in the history file


def history_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the console keeps its history: $XDG_STATE_HOME/leash/console_history, else
    ~/.local/state/leash/console_history (the XDG base directory default)."""
    env = os.environ if environ is None else environ
    state = env.get("XDG_STATE_HOME", "")
    # The XDG specification ignores a relative path.
    base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "leash" / "console_history"


def _readline() -> ModuleType | None:
    try:
        import readline
    except ImportError:  # Windows, or a Python built without it
        return None
    return readline


class TerminalLines:
    """Reads typed lines with readline; keeps the history file; restores the terminal."""

    def __init__(self, readline: ModuleType, history: Path) -> None:
        self._readline = readline
        self._history = history
        self._saved_mode: list[Any] | None = None
        self.reading = False

    @classmethod
    def open(
        cls, completer: Callable[[str, str], list[str]], history: Path | None = None
    ) -> TerminalLines | None:
        """Line editing on this terminal, or None (no readline: plain line reading)."""
        readline = _readline()
        if readline is None:
            return None
        lines = cls(readline, history or history_path())
        lines._start(completer)
        return lines

    def _start(self, completer: Callable[[str, str], list[str]]) -> None:
        readline = self._readline
        with contextlib.suppress(ImportError, OSError):
            import termios

            self._saved_mode = termios.tcgetattr(sys.stdin.fileno())
        with contextlib.suppress(OSError):  # none yet, or unreadable: start a new one
            readline.read_history_file(self._history)
        readline.set_history_length(HISTORY_LENGTH)
        readline.set_completer_delims(" \t\n")
        matches: list[str] = []

        def complete(word: str, state: int) -> str | None:
            if state == 0:
                line = readline.get_line_buffer()
                before = line[: readline.get_begidx()]
                try:
                    matches[:] = completer(before, word)
                except Exception:  # a completion must never end the console
                    log.exception("completion failed")
                    matches[:] = []
            return matches[state] if state < len(matches) else None

        readline.set_completer(complete)
        if "libedit" in (readline.__doc__ or ""):
            readline.parse_and_bind("bind ^I rl_complete")
        else:
            readline.parse_and_bind("tab: complete")

    async def read(self, prompt: str) -> str | None:
        """The next line typed (without its newline), or None at end of input (Ctrl-D)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[str | None] = loop.create_future()

        def settle(line: str | None, error: BaseException | None) -> None:
            if done.done():
                return
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(line)

        def work() -> None:
            # A daemon thread: a Leash stopped by a signal does not wait for a line.
            try:
                line: str | None = input(prompt)
                error = None
            except EOFError:
                line, error = None, None
            except BaseException as failure:  # handed to the reader, not lost in the thread
                line, error = None, failure
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(settle, line, error)

        self.reading = True
        try:
            threading.Thread(target=work, name="leash-console", daemon=True).start()
            return await done
        finally:
            self.reading = False

    def typed_so_far(self) -> str:
        """What is on the input line now (to draw it again below a notice)."""
        return str(self._readline.get_line_buffer())

    def close(self) -> None:
        """Save the history (bounded) and give the terminal back as it was."""
        try:
            self._history.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._readline.write_history_file(self._history)
            os.chmod(self._history, 0o600)
        except OSError as error:
            log.warning("console history not saved to %s: %s", self._history, error)
        if self._saved_mode is not None:
            with contextlib.suppress(ImportError, OSError):
                import termios

                termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, self._saved_mode)
