"""`pip install leash` and the container image carry no emulator: moto, flask and the sandbox's
other dependencies are the `sandbox` extra, which `make install` (so `make run`, `make test`)
adds and production leaves out.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
EMULATOR_PACKAGES = {"moto", "flask", "flask-cors", "cel-python"}


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", Requirement(requirement).name).lower()


def _project() -> dict[str, object]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert isinstance(project, dict)
    return project


def test_the_core_dependencies_leave_the_emulators_out() -> None:
    project = _project()
    core = {_name(r) for r in project["dependencies"]}  # type: ignore[attr-defined]
    assert not core & EMULATOR_PACKAGES
    extras = project["optional-dependencies"]
    assert isinstance(extras, dict)
    assert {_name(r) for r in extras["sandbox"]} >= EMULATOR_PACKAGES


def test_the_installed_metadata_puts_the_emulators_behind_the_extra() -> None:
    core: set[str] = set()
    sandbox: set[str] = set()
    for line in importlib.metadata.requires("leash") or []:
        requirement = Requirement(line)
        if requirement.marker is None:
            core.add(_name(line))
        elif requirement.marker.evaluate({"extra": "sandbox"}):
            sandbox.add(_name(line))
    assert core, "no Requires-Dist: the installed leash is not this project"
    assert not core & EMULATOR_PACKAGES, "reinstall: `make install` syncs the metadata"
    assert sandbox >= EMULATOR_PACKAGES


def _locked_packages(*options: str) -> set[str]:
    """What uv.lock installs for the project with these options (no dev group), by name."""
    uv = Path(sys.executable).parent / "uv"
    exported = subprocess.run(  # noqa: S603 - the venv's own uv, fixed arguments
        [str(uv), "export", "--frozen", "--no-dev", "--no-hashes", "--no-emit-project", *options],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return {
        re.sub(r"[-_.]+", "-", match.group(1)).lower()
        for match in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", exported, re.MULTILINE)
    }


@pytest.mark.parametrize(
    ("options", "with_emulators"),
    [
        pytest.param((), False, id="production"),
        pytest.param(("--extra", "sandbox"), True, id="with the sandbox extra"),
    ],
)
def test_the_lock_installs_the_emulators_only_with_the_extra(
    options: tuple[str, ...], with_emulators: bool
) -> None:
    locked = _locked_packages(*options)
    assert "boto3" in locked
    assert (locked >= EMULATOR_PACKAGES) is with_emulators
    assert bool(EMULATOR_PACKAGES & locked) is with_emulators


def test_make_install_adds_the_extra_and_the_image_does_not() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    syncs = re.findall(r"\$\(UV\) sync\b[^\n]*", makefile)
    assert syncs, "the Makefile no longer syncs with uv"
    assert all("--extra sandbox" in sync for sync in syncs)
    dockerfile = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    image_syncs = re.findall(r"\buv sync\b[^\n&;]*", dockerfile)
    assert image_syncs, "the Dockerfile no longer installs with uv sync"
    for sync in image_syncs:
        assert "--extra" not in sync
        assert "--all-extras" not in sync
