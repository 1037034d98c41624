"""The console as a person meets it: `leash serve --sandbox --console` on a pseudo-terminal.

Keys are typed as a terminal sends them (Up is ESC [ A, Tab is a tab); what Leash prints is
read back from the terminal. The process runs with its own SQLite file, HOME and
XDG_STATE_HOME, so the history file it leaves behind is its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.leash_process import ROOT

UP = "\x1b[A"
TAB = "\t"
WAIT = 60.0  # seconds for any one answer: the machine may be loaded
START = 180.0  # the sandbox clouds, migrations and discovery
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[>=]|\r")


class Terminal:
    """A `leash serve` whose stdin, stdout and stderr are the slave side of a pty."""

    def __init__(self, directory: Path) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("LEASH_")},
            "HOME": str(directory / "home"),
            "XDG_STATE_HOME": str(directory / "state"),
            "TERM": "xterm",
            "LEASH_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'leash.db'}",
            "PYTHONPATH": str(ROOT),
        }
        self.process = subprocess.Popen(  # our own entry point
            [sys.executable, "-m", "bot", "serve", "--sandbox", "--console", "--port", "0"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=directory,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self._master = master
        self.screen = ""  # everything printed, escape sequences removed
        self._seen = 0

    def type(self, keys: str) -> None:
        os.write(self._master, keys.encode())

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self._master], [], [], timeout)
        if ready:
            with contextlib.suppress(OSError):  # EIO: the process has gone
                self.screen += _ESCAPES.sub(
                    "", os.read(self._master, 65536).decode(errors="replace")
                )

    def wait_for(self, pattern: str, *, within: float = WAIT) -> re.Match[str]:
        """The first match of `pattern` in what was printed since the last wait."""
        deadline = time.monotonic() + within
        while True:
            found = re.compile(pattern).search(self.screen, self._seen)
            if found:
                self._seen = found.end()
                return found
            if time.monotonic() > deadline or self.process.poll() is not None:
                pytest.fail(f"no {pattern!r} within {within} s; printed:\n{self.screen[-4000:]}")
            self._read(0.2)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=WAIT)
        os.close(self._master)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    running = Terminal(tmp_path)
    try:
        yield running
    finally:
        running.close()


def test_history_completion_and_a_button_pressed_by_number(
    terminal: Terminal, tmp_path: Path
) -> None:
    # Start-up: a line per phase, then the banner with the counts `identities` shows.
    terminal.wait_for(r"Discovering identities in 3 clouds \(aws, gcp, azure\)… ", within=START)
    counted = terminal.wait_for(
        r"Inventory: (\d+) identities, (\d+) of them AI agents", within=START
    )
    terminal.wait_for(r"identities have no owner, \d+ of them AI agents")
    terminal.wait_for(r"dev> ")
    assert "has no owner." not in terminal.screen  # summarised, not one card per identity

    terminal.type("whoami\r")
    terminal.wait_for(r"You are dev \(user\) via console")
    terminal.wait_for(r"dev> ")
    terminal.type(UP + "\r")  # the line before, from history
    terminal.wait_for(r"You are dev \(user\) via console")
    terminal.wait_for(r"dev> ")

    terminal.type("identi" + TAB + "\r")  # a command word completed
    listed = terminal.wait_for(r"Identities \((\d+)\):")
    assert listed[1] == counted[1]
    terminal.wait_for(r"dev> ")

    terminal.type("owner show code-rev" + TAB + "\r")  # an identity's name completed
    terminal.wait_for(r"code-review-agent is owned by owner-b")
    terminal.wait_for(r"dev> ")

    terminal.type("request support-triage-agent s3-read for 10m because triage\r")
    request_id = terminal.wait_for(r"Request (r-[a-z0-9]{8}) is waiting for approval")[1]
    terminal.wait_for(rf"\[1\] Approve: approve {request_id}   \[2\] Deny: deny {request_id}")
    terminal.type("as owner-a\r")
    terminal.wait_for(r"You are now owner-a\.")
    terminal.wait_for(r"owner-a> ")
    terminal.type("1\r")  # the card's first button, as the owner
    terminal.wait_for(rf"\(owner-a presses: approve {request_id}\)")
    terminal.wait_for(rf"Approved {request_id}: grant g-[a-z0-9]{{8}} is active")
    terminal.wait_for(r"owner-a> ")

    terminal.type("quit\r")
    assert terminal.process.wait(timeout=WAIT) == 0
    history = (tmp_path / "state" / "leash" / "console_history").read_text().splitlines()
    assert [line.strip() for line in history] == [
        "whoami",  # recalled with Up: not stored twice
        "identities",
        "owner show code-review-agent",
        "request support-triage-agent s3-read for 10m because triage",
        "as owner-a",
        "1",
        "quit",
    ]
    assert (tmp_path / "state" / "leash" / "console_history").stat().st_mode & 0o777 == 0o600


def test_json_logs_get_the_banner_as_one_record(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LEASH_")},
        "HOME": str(tmp_path),
        "LEASH_LOG_FORMAT": "json",
        "LEASH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'leash.db'}",
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(  # our own entry point
        [sys.executable, "-m", "bot", "serve", "--sandbox", "--no-console", "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        env=env,
        text=True,
    )
    try:
        assert process.stdout is not None
        printed = []
        for line in process.stdout:  # ends when the process does: it is stopped below
            printed.append(line)
            if '"banner"' in line:
                break
        record = json.loads(printed[-1])
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=WAIT)
    assert record["message"].startswith("Leash is serving on http://127.0.0.1:")
    banner = record["banner"]
    assert banner["identities"] > banner["agents"] > 0
    assert banner["unowned"] >= len(banner["unowned_agents"]) > 0
    assert banner["sandbox_aws"].startswith("http://127.0.0.1:")
    assert not [line for line in printed if line.startswith(("Leash is serving", "Inventory:"))]
