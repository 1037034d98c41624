"""Run `leash serve` as a real child process and talk to it through its console and HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import urllib.request
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from bot.config import BUNDLED_POLICY

READY = "Leash is serving"
WAITING = re.compile(r"Request (r-[a-z0-9]{8}) is waiting for approval")
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


@asynccontextmanager
async def leash_process(
    env: Mapping[str, str], *, console: bool
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m bot serve` with `env`; killed on exit if it is still running."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        "--console" if console else "--no-console",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(env),
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def read_until(
    process: asyncio.subprocess.Process, pattern: re.Pattern[str] | str, *, within: float = 30
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


async def say(process: asyncio.subprocess.Process, *lines: str) -> None:
    """Type `lines` into the console."""
    assert process.stdin is not None
    process.stdin.write("".join(f"{line}\n" for line in lines).encode())
    await process.stdin.drain()


async def serving_url(process: asyncio.subprocess.Process) -> str:
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
    process: asyncio.subprocess.Process, agent: str, owner: str, seconds: int, reason: str
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
