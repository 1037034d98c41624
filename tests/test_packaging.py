"""`pip install leash` and the container image carry no emulator: moto, flask and the sandbox's
other dependencies are the `sandbox` extra, which `make install` (so `make run`, `make test`)
adds and production leaves out. The wheel carries the licence, classifiers and project URLs.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
EMULATOR_PACKAGES = {"moto", "flask", "flask-cors", "cel-python"}
HOME = "https://github.com/leash-dev/leash"
# Each a trove classifier (pypi.org/classifiers) the project must keep.
REQUIRED_CLASSIFIERS = {
    "Development Status :: 3 - Alpha",
    "License :: OSI Approved :: Apache Software License",
    "Programming Language :: Python :: 3.11",
    "Programming Language :: Python :: 3 :: Only",
    "Framework :: AsyncIO",
    "Topic :: Security",
}
REQUIRED_URLS = {"Homepage", "Documentation", "Source", "Issues", "Changelog"}


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


# The wheel's metadata: what PyPI and `pip show` would see.


def _uv() -> str:
    return str(Path(sys.executable).parent / "uv")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from this checkout by its build backend (uv build, isolated)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(  # noqa: S603 - the venv's own uv, fixed arguments
        [_uv(), "build", "--wheel", "--quiet", "--out-dir", str(out), str(ROOT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    (built,) = out.glob("leash-*.whl")
    return built


def _dist_info(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (dist_info,) = {
            name.split("/", 1)[0] for name in archive.namelist() if ".dist-info/" in name
        }
    return dist_info


def _metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(f"{_dist_info(wheel)}/METADATA").decode("utf-8")
    return Parser().parsestr(text, headersonly=True)


def test_the_wheel_ships_the_apache_licence(wheel: Path) -> None:
    metadata = _metadata(wheel)
    assert metadata["License"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in licence
    assert "Version 2.0, January 2004" in licence
    assert "END OF TERMS AND CONDITIONS" in licence, "not the full licence text"
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read(f"{_dist_info(wheel)}/licenses/LICENSE").decode("utf-8")
    assert shipped == licence


def test_the_wheel_carries_classifiers_that_agree_with_the_project(wheel: Path) -> None:
    classifiers = _metadata(wheel).get_all("Classifier") or []
    assert len(classifiers) == len(set(classifiers)), "a classifier is listed twice"
    assert set(classifiers) >= REQUIRED_CLASSIFIERS
    # One Python version classifier per minor version the project accepts, and no other.
    minors = {c.rsplit(" :: ", 1)[1] for c in classifiers if re.search(r"Python :: 3\.\d+$", c)}
    assert minors == {"3.11"}
    assert _project()["requires-python"] == ">=3.11,<3.12"
    (status,) = [c for c in classifiers if c.startswith("Development Status ::")]
    assert status in REQUIRED_CLASSIFIERS


def test_the_wheel_links_the_project_s_pages(wheel: Path) -> None:
    urls = dict(
        (label.strip(), url.strip())
        for label, _, url in (
            entry.partition(",") for entry in _metadata(wheel).get_all("Project-URL") or []
        )
    )
    assert set(urls) >= REQUIRED_URLS
    for label, url in urls.items():
        assert url.startswith(HOME), f"{label}: {url} is not under {HOME}"
    assert urls["Homepage"] == HOME
    assert urls["Issues"] == f"{HOME}/issues"
    assert urls["Changelog"].endswith("/CHANGELOG.md")
    for document in ("CHANGELOG.md", "SECURITY.md", "CONTRIBUTING.md"):
        assert (ROOT / document).is_file(), f"{document} is missing"


def test_the_wheel_names_authors_and_keywords(wheel: Path) -> None:
    metadata = _metadata(wheel)
    assert metadata["Author"] or metadata["Author-email"]
    keywords = (metadata["Keywords"] or "").split(",")
    assert {"iam", "least-privilege", "ai-agents"} <= set(keywords)
    assert metadata["Summary"] == _project()["description"]
