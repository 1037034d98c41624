"""A terminal chat: the same commands as Slack, typed on stdin, with `as <user>` to switch roles."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from bot.commands.handler import CommandHandler
from bot.domain.actors import Actor
from bot.domain.messages import Attachment, Notice, NoticeKind, Reply
from bot.domain.states import ActorKind
from bot.lifecycle.service import Lifecycle
from bot.surfaces.console import inventory
from bot.surfaces.console.buttons import ButtonBoard
from bot.surfaces.console.completion import Completer
from bot.surfaces.console.line_editing import TerminalLines
from bot.surfaces.console.render import card_choices, format_reply

BANNER = """Leash console. You are {user}. Type `help` for commands, `as <user>` to act as someone
else (try dev, owner-a, owner-b, secops), `quit` to stop. Tab completes, Up recalls a line.
Press a card's button by its number (`1`) or its label (`approve`, `confirm`)."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")  # characters kept out of saved file names
_CLEAR_LINE = "\r\x1b[K"
NAMES_SECONDS = 30.0  # how long completion trusts the inventory's names it read


def default_attachments_dir() -> Path:
    """Where the console writes attached files unless told otherwise."""
    return Path(tempfile.gettempdir()) / "leash-attachments"


class ConsoleSurface:
    """Reads commands line by line; prints replies and, for everyone, the notices Leash sends.

    With `starting=True` the notices sent while Leash starts are held until `run` has printed
    the banner; the unowned-identity alerts among them are summarised in one paragraph (they
    still reach Slack and Teams one by one).
    """

    name = "console"

    def __init__(
        self,
        handler: CommandHandler,
        *,
        out: TextIO | None = None,
        user: str = "dev",
        attachments_dir: Path | None = None,
        lifecycle: Lifecycle | None = None,
        starting: bool = False,
        history: Path | None = None,
    ) -> None:
        self._handler = handler
        self._lifecycle = lifecycle
        self._out = out or sys.stdout
        self._attachments_dir = attachments_dir or default_attachments_dir()
        self.user = user
        self.buttons = ButtonBoard()
        self.completer = Completer()
        self._history = history
        # Notices raised while a command runs are shown after its reply, as a chat would.
        self._held: list[Notice] | None = None
        self._startup: list[Notice] | None = [] if starting else None
        self._prompt: str | None = None
        self._terminal: TerminalLines | None = None
        self._names_read: float | None = None  # when the inventory's names were last read

    def _print(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    async def notify(self, notice: Notice) -> None:
        if self._startup is not None:
            self._startup.append(notice)
            return
        if self._held is not None:
            self._held.append(notice)
            return
        if self._prompt is not None:  # arrived while the user is typing: keep the prompt last
            self._out.write(_CLEAR_LINE if self._terminal else "\n")
        self._show(notice)
        if self._prompt is not None:
            typed = self._terminal.typed_so_far() if self._terminal else ""
            self._out.write(self._prompt + typed)
            self._out.flush()

    def _show(self, notice: Notice) -> None:
        to = ", ".join(notice.recipients)
        self._print(f"→ to {to} [{notice.kind}]\n" + self._render(notice.reply))

    def _render(self, reply: Reply) -> str:
        self.buttons.show(card_choices(reply))
        return format_reply(
            reply,
            saved=[self._save(a) for a in reply.attachments],
            numbered=True,
            shorten=self.completer.vocabulary.shorten,
            width=shutil.get_terminal_size((100, 24)).columns if self._terminal else 100,
        )

    def _save(self, attachment: Attachment) -> Path | str:
        """Write an attached file under its own unique name; say why if it cannot be."""
        # Only the base name, in safe characters: a file name is no way out of the directory.
        safe = Path(_UNSAFE.sub("_", Path(attachment.filename).name).lstrip(".") or "attachment")
        try:
            self._attachments_dir.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(
                prefix=f"{safe.stem}-", suffix=safe.suffix, dir=self._attachments_dir
            )
            with os.fdopen(fd, "wb") as file:
                file.write(attachment.content)
        except OSError as error:
            return f"{attachment.filename} (not saved: {error.strerror or error})"
        return Path(name)

    async def handle_line(self, line: str) -> bool:
        """Run one typed line; return False when the user asked to quit."""
        text = line.strip()
        if not text:
            return True
        if text.lower() in ("quit", "exit"):
            return False
        if text.lower().startswith("as ") or text.lower() == "as":
            self._switch(text[3:].strip())
            return True
        press = self.buttons.press(text)
        if press is not None and press.command is None:
            self._print(f"✗ {press.problem}")
            return True
        if press is not None and press.command is not None:
            text = press.command
            self._print(f"({self.user} presses: {self.completer.vocabulary.shorten(text)})")
        actor = Actor(name=self.user, kind=ActorKind.USER, origin="console")
        self._held = []
        try:
            reply = await self._handler.handle_text(text, actor=actor)
        finally:
            held, self._held = self._held, None
        self._print(self._render(reply))
        for notice in held:
            self._show(notice)
        return True

    def _switch(self, name: str) -> None:
        if not name or " " in name or len(name) > 64:
            self._print("✗ Usage: as <user>")
        else:
            self.user = name
            self._print(f"You are now {self.user}.")

    async def refresh(self) -> None:
        """Read again what completion offers: open ids after every line, the inventory's names
        (and which ids have short names) at most every NAMES_SECONDS."""
        if self._lifecycle is None:
            return
        actor = Actor(name=self.user, kind=ActorKind.USER, origin="console")
        now = time.monotonic()
        fresh = self._names_read is not None and now - self._names_read < NAMES_SECONDS
        if not fresh:
            self._names_read = now
        self.completer.vocabulary = await inventory.vocabulary(
            self._lifecycle, actor, known=self.completer.vocabulary if fresh else None
        )

    async def _started(self) -> None:
        """Show what came while Leash started: the unowned alerts summarised, then the rest."""
        arrived, self._startup = self._startup or [], None
        unowned = [n for n in arrived if n.kind is NoticeKind.UNOWNED]
        if unowned:
            counts = None
            if self._lifecycle is not None:
                counts = await inventory.inventory_counts(self._lifecycle)
            self._print(_unowned_summary(unowned, counts))
        for notice in arrived:
            if notice.kind is not NoticeKind.UNOWNED:
                self._show(notice)

    async def run(self, reader: asyncio.StreamReader | None = None) -> None:
        """Serve stdin (a TTY or a pipe) until end of input or `quit`."""
        if reader is None and self._out is sys.stdout and sys.stdin.isatty():
            self._terminal = TerminalLines.open(self.completer.matches, self._history)
        try:
            await self.refresh()
            self._print(BANNER.format(user=self.user))
            await self._started()
            if self._terminal is not None:
                await self._read_terminal(self._terminal)
            else:
                await self._read_stream(reader or await _stdin_reader())
        finally:
            if self._prompt is not None:  # stopped (Ctrl-C, SIGTERM) while a line was typed
                self._print("")
                self._prompt = None
            if self._terminal is not None:
                self._terminal.close()

    async def _read_terminal(self, terminal: TerminalLines) -> None:
        while True:
            self._prompt = f"{self.user}> "
            line = await terminal.read(self._prompt)
            self._prompt = None
            if line is None or not await self.handle_line(line):
                return
            await self.refresh()

    async def _read_stream(self, stream: asyncio.StreamReader) -> None:
        while True:
            if sys.stdin.isatty():
                self._prompt = f"{self.user}> "
                self._out.write(self._prompt)
                self._out.flush()
            raw = await stream.readline()
            self._prompt = None
            if not raw:
                return
            if not await self.handle_line(raw.decode("utf-8", errors="replace")):
                return
            await self.refresh()


def _unowned_summary(notices: list[Notice], counts: inventory.InventoryCounts | None) -> str:
    """One paragraph for the unowned-identity alerts sent while Leash started."""
    told = sorted({person for n in notices for person in n.recipients})
    alerted = {n.reply.choices[0].command.split()[-1] for n in notices if n.reply.choices}
    found = f"{len(alerted)} identities have no owner."
    if counts is not None:
        agents = counts.unowned_agents
        found = (
            f"{counts.unowned} identities have no owner, {len(agents)} of them AI "
            f"agent{'' if len(agents) == 1 else 's'}"
            + (f":\n    {', '.join(agents)}." if agents else ".")
        )
    return (
        f"{found}\n"
        f"    {', '.join(told)} got one alert for each (on Slack or Teams too; not shown here).\n"
        "    `owner claim <identity>` claims one; `leash identities --unowned` lists them."
    )


async def _stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    mode = os.fstat(sys.stdin.fileno()).st_mode
    if stat.S_ISREG(mode):  # a redirected file cannot be watched by the event loop
        reader.feed_data(sys.stdin.buffer.read())
        reader.feed_eof()
        return reader
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader
