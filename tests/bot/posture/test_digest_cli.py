"""`leash digest --dry-run` says plainly that nothing was posted and where its chart is."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from bot.app import Leash


async def dry_run(database_url: str, cwd: Path) -> str:
    env = {**os.environ, "LEASH_DATABASE_URL": database_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "digest",
        "--team",
        "ml-platform",
        "--dry-run",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, out.decode()
    return out.decode()


async def test_a_dry_run_names_the_chart_it_wrote_and_posts_nothing(
    leash: Leash, database_url: str, tmp_path: Path
) -> None:
    await leash.lifecycle.least_privilege.nightly()
    printed = await dry_run(database_url, tmp_path)
    assert "not saved" not in printed
    (chart,) = re.findall(r"📎 ml-platform: last 8 weeks: (\S+\.png)$", printed, re.MULTILINE)
    assert (await asyncio.to_thread(Path(chart).read_bytes)).startswith(b"\x89PNG")
    assert printed.rstrip().endswith(
        "Dry run: not posted to the team's channel (its chart is the file named above)."
    )
    assert "chart:" not in printed  # the path is said once, where the digest names its chart


async def test_a_dry_run_for_a_team_never_scanned_mentions_no_chart(
    leash: Leash, database_url: str, tmp_path: Path
) -> None:
    printed = await dry_run(database_url, tmp_path)
    assert "no scans yet" in printed
    assert "📎" not in printed
    assert ".png" not in printed
    assert printed.rstrip().endswith("Dry run: not posted to the team's channel.")
