"""A terminal chat: the same commands as Slack, typed on stdin, with `as <user>` to switch roles."""

from __future__ import annotations

import asyncio
import os
import re
import stat
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from bot.commands.handler import CommandHandler
from bot.domain.actors import Actor
from bot.domain.messages import Attachment, Choice, Notice, Reply
from bot.domain.states import ActorKind

BANNER = """Leash console. You are {user}. Type `help` for commands, `as <user>` to act as someone
else (try dev, owner-a, owner-b, secops), `quit` to stop. Buttons are shown as [label: command]."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")  # characters kept out of saved file names


def format_reply(reply: Reply, *, saved: Sequence[Path | str] = ()) -> str:
    """Render a reply as terminal text; `saved` says where each attachment was written."""
    mark = "" if reply.ok else "✗ "
    parts = [f"{mark}{reply.text}"]
    parts.extend(f"    {line}" for line in reply.lines)
    for item in reply.sections:
        parts.append(f"    {item.title}")
        parts.extend(f"        {line}" for line in item.lines)
        if item.choices:
            parts.append("        " + _buttons(item.choices))
    for index, attachment in enumerate(reply.attachments):
        where = saved[index] if index < len(saved) else f"{attachment.filename} (not saved)"
        parts.append(f"    📎 {attachment.title}: {where}")
    if reply.choices:
        parts.append("    " + _buttons(reply.choices))
    return "\n".join(parts)


def _buttons(choices: Sequence[Choice]) -> str:
    return "  ".join(f"[{c.label}: {c.command}]" for c in choices)


def default_attachments_dir() -> Path:
    """Where the console writes attached files unless told otherwise."""
    return Path(tempfile.gettempdir()) / "leash-attachments"


class ConsoleSurface:
    """Reads commands line by line; prints replies and, for everyone, the notices Leash sends."""

    name = "console"

    def __init__(
        self,
        handler: CommandHandler,
        *,
        out: TextIO | None = None,
        user: str = "dev",
        attachments_dir: Path | None = None,
    ) -> None:
        self._handler = handler
        self._out = out or sys.stdout
        self._attachments_dir = attachments_dir or default_attachments_dir()
        self.user = user
        # Notices raised while a command runs are shown after its reply, as a chat would.
        self._held: list[Notice] | None = None
        self._prompt: str | None = None

    def _print(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    async def notify(self, notice: Notice) -> None:
        if self._held is not None:
            self._held.append(notice)
            return
        if self._prompt is not None:  # arrived while the user is typing: keep the prompt last
            self._out.write("\n")
        self._show(notice)
        if self._prompt is not None:
            self._out.write(self._prompt)
            self._out.flush()

    def _show(self, notice: Notice) -> None:
        to = ", ".join(notice.recipients)
        self._print(f"→ to {to} [{notice.kind}]\n" + self._render(notice.reply))

    def _render(self, reply: Reply) -> str:
        return format_reply(reply, saved=[self._save(a) for a in reply.attachments])

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
        if text.lower().startswith("as "):
            name = text[3:].strip()
            if not name or " " in name or len(name) > 64:
                self._print("✗ Usage: as <user>")
            else:
                self.user = name
                self._print(f"You are now {self.user}.")
            return True
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

    async def run(self, reader: asyncio.StreamReader | None = None) -> None:
        """Serve stdin (a TTY or a pipe) until end of input or `quit`."""
        stream = reader or await _stdin_reader()
        self._print(BANNER.format(user=self.user))
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
