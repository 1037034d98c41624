"""The crash-point port: production wires a no-op, the drill kills only at its own step."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from bot import crash_drill
from bot.domain.ports import CRASH_STEPS, NoCrashes

DRILL = """
from bot.crash_drill import KillAt
drill = KillAt("revoke-claimed")
for step in ("approved", "granted-in-cloud", "timer-armed"):
    drill.reached(step, grant_id="g-test")
    print("passed", step, flush=True)
drill.reached("revoke-claimed", grant_id="g-test")
print("still alive", flush=True)
"""


def test_without_the_variable_the_app_wires_no_crashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(crash_drill.ENVIRONMENT_VARIABLE, raising=False)
    wired = crash_drill.from_environment()
    assert isinstance(wired, NoCrashes)
    for step in CRASH_STEPS:
        wired.reached(step, grant_id="g-1")  # nothing happens, at any step


def test_a_misspelt_step_is_refused_before_anything_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(crash_drill.ENVIRONMENT_VARIABLE, "granted-in-the-cloud")
    with pytest.raises(ValueError, match="is not a crash point"):
        crash_drill.from_environment()


def test_the_drill_kills_at_its_step_and_only_there() -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", DRILL], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == -signal.SIGKILL
    assert done.stdout.split("\n")[:3] == [
        "passed approved",
        "passed granted-in-cloud",
        "passed timer-armed",
    ]
    assert "still alive" not in done.stdout
    assert "killing Leash at revoke-claimed (grant g-test)" in done.stderr
