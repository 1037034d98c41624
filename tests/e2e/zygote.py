"""A pre-imported parent for `leash serve` processes: `python -m tests.e2e.zygote <socket fd>`.

Starting `python -m bot serve` spends about two seconds of CPU importing Leash before it does
anything; end-to-end tests start dozens of them. This process imports Leash once, then forks a
child per request. Each child takes the stdin and stdout/stderr pipes it was sent, the request's
environment, working directory and argv, and runs `python -m bot` as `runpy` does, exiting
through the ordinary interpreter shutdown, so it behaves as a new `python -m bot` process that
found its modules already imported.

Protocol, over the Unix socket whose descriptor is the only argument (one JSON object per
message, answered by one JSON object):
  {"spawn": {"argv": [...], "env": {...}, "cwd": "..."}} with two descriptors (stdin's read end,
  stdout's write end) -> {"pid": <pid>}
  {"poll": <pid>} -> {"returncode": <int or null>} (negative: killed by that signal)
The zygote exits when the socket closes (its test process is gone).
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import runpy
import socket
import sys
from typing import Any

# What `leash serve --cloud aws` imports on its way to serving, so no child imports it again.
PRELOAD = (
    "bot.cli.main",
    "cloud.aws",
    "boto3",
    "botocore.session",
    "asyncpg",
    "aiosqlite",
    "sqlalchemy.dialects.postgresql.asyncpg",
    "sqlalchemy.dialects.sqlite.aiosqlite",
    "alembic.command",
    "alembic.runtime.migration",
)
MAX_MESSAGE = 1 << 20


def _receive(channel: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    descriptors = array.array("i")
    message, ancillary, _, _ = channel.recvmsg(
        MAX_MESSAGE, socket.CMSG_SPACE(2 * descriptors.itemsize)
    )
    if not message:
        return None
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(data) - len(data) % descriptors.itemsize
            descriptors.frombytes(data[:usable])
    return dict(json.loads(message)), list(descriptors)


def _answer(channel: socket.socket, reply: dict[str, Any]) -> None:
    channel.sendall(json.dumps(reply).encode())


def _serve(channel: socket.socket) -> dict[str, Any] | None:
    """Answer requests until the socket closes (None), or return a child's spawn request."""
    exited: dict[int, int] = {}
    while True:
        received = _receive(channel)
        if received is None:
            return None
        request, descriptors = received
        if "spawn" in request:
            stdin, stdout = descriptors
            pid = os.fork()
            if pid == 0:
                channel.close()
                os.dup2(stdin, 0)
                os.dup2(stdout, 1)
                os.dup2(stdout, 2)
                os.close(stdin)
                os.close(stdout)
                return dict(request["spawn"])
            os.close(stdin)
            os.close(stdout)
            _answer(channel, {"pid": pid})
        elif "poll" in request:
            pid = int(request["poll"])
            if pid not in exited:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done == pid:
                    exited[pid] = os.waitstatus_to_exitcode(status)
            _answer(channel, {"returncode": exited.get(pid)})
        else:
            for descriptor in descriptors:
                os.close(descriptor)
            _answer(channel, {"error": f"unknown request {sorted(request)}"})


def main() -> None:
    channel = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, fileno=int(sys.argv[1]))
    for module in PRELOAD:
        # Only a head start: what fails here fails again, visibly, in the child that needs it.
        with contextlib.suppress(Exception):
            __import__(module)
    spawn = _serve(channel)
    if spawn is None:
        return
    # The child: become `python -m <module> <args...>` in the request's environment.
    os.chdir(spawn["cwd"])
    os.environ.clear()
    os.environ.update(spawn["env"])
    module, *arguments = spawn["argv"]
    sys.argv = [module, *arguments]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
