"""The demo works twice: `leash serve --sandbox` started again on the same `leash.db` (each run
with a sandbox of its own, as each `make run`) finds the same inventory, and a later `leash
scan` (a third sandbox) reads every account.

Each Leash runs as `make run` runs it: `python -m bot serve --sandbox` in a directory of its
own, on the default database (./leash.db), with no LEASH_* or AWS_* settings.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

from tests.e2e.helpers import eventually
from tests.e2e.leash_process import READY, ROOT, SERVING_ON, readiness

_Row = tuple[Any, ...]


def _environment() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("LEASH_", "AWS_", "MOTO_", "SLACK_", "TEAMS_"))
    }
    return {**env, "PYTHONPATH": str(ROOT), "LEASH_PORT": "0", "LEASH_AWS_LOOKUP_RATE": "200"}


async def _read_until(process: asyncio.subprocess.Process, text: str, within: float) -> str:
    assert process.stdout is not None
    seen = ""
    while text not in seen:
        try:
            line = await asyncio.wait_for(process.stdout.readline(), timeout=within)
        except TimeoutError:
            raise AssertionError(f"no {text!r} within {within} s in:\n{seen}") from None
        assert line, f"Leash exited early:\n{seen}"
        seen += line.decode()
    return seen


async def _serve_once(directory: Path) -> str:
    """Start `leash serve --sandbox`, wait until it is ready, stop it; return its output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        "--sandbox",
        "--no-console",
        cwd=directory,
        env=_environment(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output = await _read_until(process, READY, within=180)
        found = SERVING_ON.search(output)
        assert found, output
        url = found.group(1)

        async def ready() -> bool:
            return (await readiness(url)).get("status") == "ready"

        assert await eventually(ready, within=120, step=0.5), await readiness(url)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=60) == 0
        return output
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _query(database: Path, sql: str) -> list[_Row]:
    with sqlite3.connect(database) as connection:
        return connection.execute(sql).fetchall()


def _inventory(database: Path) -> list[_Row]:
    return _query(
        database,
        "SELECT i.id, i.provider, i.account, i.native_id, i.name, i.classification, i.present, "
        "o.primary_owner FROM identity i LEFT JOIN ownership o ON o.identity_id = i.id "
        "ORDER BY i.id",
    )


async def test_a_second_run_on_the_same_database_finds_the_same_inventory(
    tmp_path: Path,
) -> None:
    database = tmp_path / "leash.db"

    await _serve_once(tmp_path)
    first = _inventory(database)
    second_output = await _serve_once(tmp_path)
    second = _inventory(database)

    assert len(first) >= 15, first
    assert second == first
    present = [row for row in second if row[6]]
    assert len(present) == len(second), [row for row in second if not row[6]]
    by_name_and_account = {(row[1], row[2], row[4]) for row in second}
    assert len(by_name_and_account) == len(second), "an identity is listed twice"
    notebook = [row for row in second if row[4] == "notebook-helper-agent"]
    assert [(row[2], row[7]) for row in notebook] == [("444455556666", "owner-a")]
    assert "could not be read" not in second_output, second_output
    assert "could not read" not in second_output, second_output


async def test_a_scan_after_a_second_run_reads_every_account(tmp_path: Path) -> None:
    database = tmp_path / "leash.db"
    await _serve_once(tmp_path)
    before = _inventory(database)

    scan = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "scan",
        cwd=tmp_path,
        env=_environment(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(scan.communicate(), timeout=300)
    text = output.decode()

    assert _inventory(database) == before
    (detail,) = _query(
        database,
        "SELECT detail FROM auditevent WHERE event_type = 'scan.completed' "
        "ORDER BY seq DESC LIMIT 1",
    )
    completed = json.loads(detail[0])
    assert completed["failed"] == 0, completed
    assert completed["scanned"] == len(before)
    assert not re.search(r"AccessDenied|WARNING", text), text
