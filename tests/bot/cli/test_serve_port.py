"""`leash serve` on a port another program holds: one line naming the setting, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from cloud.sandbox import Sandbox
from tests.bot.cli.cli_run import sandbox_env


def test_a_port_in_use_stops_serve_with_one_line_naming_the_setting(
    tmp_path: Path, fresh_sandbox: Sandbox
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            **{k: v for k, v in sandbox_env(fresh_sandbox).items() if v is not None},
            "LEASH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'leash.db'}",
        }
        done = subprocess.run(  # noqa: S603 - our own command, fixed arguments
            [sys.executable, "-m", "bot", "serve", "--no-console", "--port", str(port)],
            capture_output=True,
            env=env,
            timeout=300,
            check=False,
        )
    said = done.stderr.decode()
    assert done.returncode == 1, said
    assert "Traceback" not in said
    assert f"Error: cannot listen on 127.0.0.1:{port}" in said
    assert "--port or LEASH_PORT" in said
