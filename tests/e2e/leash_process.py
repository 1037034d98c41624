"""Run `leash serve` as a real child process and talk to it through its console and HTTP."""

from __future__ import annotations

import array
import asyncio
import atexit
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from bot.config import BUNDLED_POLICY
from tests.e2e.helpers import eventually

READY = "Leash is serving"
WAITING = re.compile(r"Request (r-[a-z0-9]{8}) is waiting for approval")
ROOT = Path(__file__).resolve().parents[2]
SERVING_ON = re.compile(r"Leash is serving on (http://\S+?)[ ,]")


def fast_policy(directory: Path) -> Path:
    """The bundled policy with a 1-second minimum grant, written to `directory`."""
    policy = re.sub(
        r'(?m)^min_duration = "[^"]+"', 'min_duration = "1s"', BUNDLED_POLICY.read_text()
    )
    assert 'min_duration = "1s"' in policy
    path = directory / "leash.toml"
    path.write_text(policy)
    return path


class LeashProcess:
    """A `python -m bot` child forked by the zygote, with asyncio's subprocess interface:
    `stdin` and `stdout` streams (stderr goes to stdout), `pid`, `returncode`, `send_signal`,
    `kill` and `wait`."""

    def __init__(
        self,
        zygote: Zygote,
        pid: int,
        stdin: asyncio.StreamWriter,
        stdout: asyncio.StreamReader,
        transports: tuple[asyncio.BaseTransport, ...],
    ) -> None:
        self._zygote = zygote
        self.pid = pid
        self.stdin: asyncio.StreamWriter | None = stdin
        self.stdout: asyncio.StreamReader | None = stdout
        self._transports = transports
        self._returncode: int | None = None

    @property
    def returncode(self) -> int | None:
        """The exit code once the process has ended (negative: killed by that signal)."""
        if self._returncode is None:
            self._returncode = self._zygote.poll(self.pid)
        return self._returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    async def wait(self) -> int:
        # The zygote, not this process, is the parent that hears the exit: ask it.
        while (code := self.returncode) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return code

    def close(self) -> None:
        for transport in self._transports:
            transport.close()


class Zygote:
    """This test process's `tests.e2e.zygote`: started on first use, ended with the process."""

    _running: Zygote | None = None

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._channel = ours
        self._lock = threading.Lock()
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "tests.e2e.zygote", str(theirs.fileno())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
            cwd=ROOT,
        )
        theirs.close()
        atexit.register(self.stop)

    @classmethod
    def running(cls) -> Zygote:
        if cls._running is None or cls._running._process.poll() is not None:
            cls._running = cls()
        return cls._running

    def _ask(self, request: dict[str, object], descriptors: tuple[int, ...] = ()) -> object:
        with self._lock:
            self._channel.sendmsg(
                [json.dumps(request).encode()],
                [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", descriptors))]
                if descriptors
                else [],
            )
            reply = json.loads(self._channel.recv(1 << 16))
        assert isinstance(reply, dict), reply
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return next(iter(reply.values()))

    def spawn(self, argv: list[str], env: Mapping[str, str], stdin: int, stdout: int) -> int:
        spawn = {"argv": argv, "env": dict(env), "cwd": os.getcwd()}
        pid = self._ask({"spawn": spawn}, (stdin, stdout))
        assert isinstance(pid, int), pid
        return pid

    def poll(self, pid: int) -> int | None:
        code = self._ask({"poll": pid})
        assert code is None or isinstance(code, int), code
        return code

    def stop(self) -> None:
        self._channel.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


# The sandbox is an emulator: tracing who created each role need not keep to CloudTrail's real
# 2 LookupEvents calls a second (about 4.5 s of every start), unless a test says otherwise.
EMULATOR_PACE = {"LEASH_AWS_LOOKUP_RATE": "200"}


async def _start(env: Mapping[str, str], *arguments: str) -> LeashProcess:
    """Fork `python -m bot <arguments>` from the zygote, its stdin and stdout piped to us."""
    loop = asyncio.get_running_loop()
    stdin_read, stdin_write = os.pipe()
    stdout_read, stdout_write = os.pipe()
    zygote = Zygote.running()
    try:
        pid = zygote.spawn(["bot", *arguments], {**EMULATOR_PACE, **env}, stdin_read, stdout_write)
    finally:
        os.close(stdin_read)
        os.close(stdout_write)
    stdout = asyncio.StreamReader(limit=2**16, loop=loop)
    reading, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(stdout, loop=loop), os.fdopen(stdout_read, "rb", 0)
    )
    writing, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(stdin_write, "wb", 0)
    )
    stdin = asyncio.StreamWriter(writing, protocol, None, loop)
    return LeashProcess(zygote, pid, stdin, stdout, (reading, writing))


@asynccontextmanager
async def leash_process(env: Mapping[str, str], *, console: bool) -> AsyncIterator[LeashProcess]:
    """`python -m bot serve` with `env`; killed on exit if it is still running.

    The process is forked from a zygote that has imported Leash already (tests/e2e/zygote.py):
    the same `python -m bot serve`, without two seconds of imports at every start."""
    process = await _start(env, "serve", "--console" if console else "--no-console")
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
        process.close()


@asynccontextmanager
async def leader_and_follower(
    env: Mapping[str, str], *, console: bool
) -> AsyncIterator[tuple[tuple[LeashProcess, str], tuple[LeashProcess, str]]]:
    """Two `leash serve` replicas on one database, started at once (one start's wait instead
    of two); yield (process, base URL) for the one elected leader, then for the follower."""
    async with (
        leash_process(env, console=console) as one,
        leash_process(env, console=console) as two,
    ):
        urls = await asyncio.gather(serving_url(one), serving_url(two))
        roles: list[str] = []

        async def elected() -> bool:
            roles[:] = [str((await readiness(url))["scheduler"]) for url in urls]
            return sorted(role.partition(" ")[0] for role in roles) == ["follower", "leader"]

        # Both have run their election before they serve; allow for a slow readiness answer.
        assert await eventually(elected, within=30, step=0.2), roles
        if roles[0] == "leader":
            yield (one, urls[0]), (two, urls[1])
        else:
            yield (two, urls[1]), (one, urls[0])


async def read_until(
    process: LeashProcess, pattern: re.Pattern[str] | str, *, within: float = 30
) -> str:
    """Read the process's output up to the first line matching `pattern`; return all of it."""
    assert process.stdout is not None
    seen = ""
    while True:
        try:
            raw = await asyncio.wait_for(process.stdout.readline(), timeout=within)
        except TimeoutError:
            raise AssertionError(f"no {pattern!r} within {within} s in:\n{seen}") from None
        line = raw.decode()
        assert line, f"Leash exited early:\n{seen}"
        seen += line
        if pattern.search(line) if isinstance(pattern, re.Pattern) else pattern in line:
            return seen


async def say(process: LeashProcess, *lines: str) -> None:
    """Type `lines` into the console."""
    assert process.stdin is not None
    process.stdin.write("".join(f"{line}\n" for line in lines).encode())
    await process.stdin.drain()


async def serving_url(process: LeashProcess) -> str:
    """Wait until the process serves; return its base URL."""
    found = SERVING_ON.search(await read_until(process, READY, within=60))
    assert found, "no address in the serving line"
    return found.group(1)


def _get_json(url: str) -> dict[str, object]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - loopback
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:  # 503 still carries the JSON body
        return dict(json.loads(error.read()))


async def readiness(base_url: str) -> dict[str, object]:
    """GET /readyz (200 or 503) as JSON."""
    return await asyncio.to_thread(_get_json, f"{base_url}/readyz")


async def approve_on(
    process: LeashProcess, agent: str, owner: str, seconds: int, reason: str
) -> str:
    """Request (as dev) and approve (as `owner`) an s3-read grant on this replica's console;
    return the grant's id once it is active."""
    await say(process, "as dev", f"request {agent} s3-read for {seconds}s because {reason}")
    request = WAITING.search(await read_until(process, WAITING))
    assert request, "no request id"
    await say(process, f"as {owner}", f"approve {request[1]}")
    approved = re.compile(rf"Approved {request[1]}: grant (g-[a-z0-9]{{8}}) is active")
    found = approved.search(await read_until(process, approved))
    assert found, "not approved"
    return found[1]
