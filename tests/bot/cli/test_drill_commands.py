"""The commands a failure drill uses: `leash sandbox` on its own, and LEASH_CRASH_AT checked."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import boto3
from click.testing import CliRunner

from bot.cli.main import main

EXPORT = re.compile(r"^\s*export (.+)$", re.MULTILINE)


def test_a_misspelt_crash_point_stops_leash_before_it_starts(tmp_path: Path) -> None:
    database = tmp_path / "leash.db"
    result = CliRunner().invoke(
        main,
        ["serve", "--no-console"],
        env={
            "LEASH_CRASH_AT": "granted_in_cloud",
            "LEASH_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        },
    )
    assert result.exit_code == 1
    assert "LEASH_CRASH_AT='granted_in_cloud' is not a crash point" in result.output
    assert "granted-in-cloud" in result.output  # the steps it could have meant
    assert not database.exists()  # nothing started, nothing written


def test_the_standalone_sandbox_serves_the_demo_aws_until_stopped(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "LEASH_DATABASE", "LEASH_AUDIT"))
    }
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[3])
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "sandbox"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        printed = ""
        for line in process.stdout:
            printed += line
            if "leash serve" in line:
                break
        found = EXPORT.search(printed)
        assert found, printed
        exported = dict(word.split("=", 1) for word in shlex.split(found.group(1)))
        assert exported["LEASH_CLOUD"] == "aws"
        # LEASH_CLOUD=aws needs the audit key: read from the one kept beside ./leash.db.
        assert exported["LEASH_AUDIT_KEY"] == f"$(cat {tmp_path / 'leash.audit-key'})"
        key_file = Path(exported["LEASH_AUDIT_KEY"][len("$(cat ") : -1])
        assert len(key_file.read_text().strip()) >= 32, printed

        # What it prints is enough for an AWS SDK in another process to reach the demo org.
        iam = boto3.Session(
            aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
            region_name=exported["AWS_DEFAULT_REGION"],
        ).client("iam", endpoint_url=exported["AWS_ENDPOINT_URL"])
        roles = {role["RoleName"] for role in iam.list_roles()["Roles"]}
        assert "support-triage-agent" in roles

        process.send_signal(signal.SIGTERM)
        rest, errors = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, errors
    assert "Sandbox stopped." in rest
    assert "Traceback" not in errors
