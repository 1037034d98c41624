"""The Teams app manifest is complete, valid against Microsoft's schema for its version, lists only
real commands, and packages into a valid zip."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

from bot.cli.teams import teams_package
from bot.cli.teams_package import (
    APP_ID_PLACEHOLDER,
    MANIFEST_DIR,
    VERSION_PLACEHOLDER,
    build_package,
    png_size,
    render_manifest,
    validate_app_id,
)
from bot.commands.grammar.access import USAGE, UsageError, parse
from tests.schemas.validation import MANIFEST_SCHEMA, MANIFEST_VERSION, manifest_problems

ROOT = Path(__file__).resolve().parents[1]
TEAMS_DIR = ROOT / "manifests" / "teams"
MANIFEST = TEAMS_DIR / "manifest.json"
SCHEMA = "https://developer.microsoft.com/en-us/json-schemas/teams/v1.17/MicrosoftTeams.schema.json"
APP_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
PACKAGE_FILES = {"manifest.json", "color.png", "outline.png"}
UNKNOWN_COMMAND = "is not a Leash command"

Document = dict[str, Any]


@cache
def manifest() -> Document:
    loaded = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), "the manifest is not a JSON object"
    return loaded


def bot() -> Document:
    bots = manifest()["bots"]
    assert isinstance(bots, list)
    assert len(bots) == 1, "Leash is one bot"
    entry = bots[0]
    assert isinstance(entry, dict)
    return entry


def command_lists() -> list[Document]:
    lists = bot()["commandLists"]
    assert isinstance(lists, list)
    return lists


def commands() -> list[Document]:
    return [command for entry in command_lists() for command in entry["commands"]]


def test_the_manifest_has_the_required_fields() -> None:
    document = manifest()
    assert document["$schema"] == SCHEMA
    assert document["manifestVersion"] == "1.17"
    assert document["version"] == VERSION_PLACEHOLDER
    assert document["id"] == APP_ID_PLACEHOLDER
    assert "packageName" not in document, "v1.17 has no packageName (the schema refuses it)"
    developer = document["developer"]
    assert developer["name"] == "Leash"
    for key in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        assert developer[key].startswith("https://github.com/leash-dev/leash"), key
    assert document["name"]["short"] == "Leash"
    assert 0 < len(document["name"]["full"]) <= 100
    assert 0 < len(document["description"]["short"]) <= 80
    assert 0 < len(document["description"]["full"]) <= 4000
    assert document["icons"] == {"color": "color.png", "outline": "outline.png"}
    assert re.fullmatch(r"#[0-9A-Fa-f]{6}", document["accentColor"])
    assert document["permissions"] == ["identity", "messageTeamMembers"]
    assert document["validDomains"] == []


def test_the_manifest_filled_in_is_valid_against_microsofts_schema_for_its_version() -> None:
    schema = json.loads(MANIFEST_SCHEMA.read_text(encoding="utf-8"))
    assert schema["properties"]["manifestVersion"]["const"] == manifest()["manifestVersion"]
    assert manifest()["manifestVersion"] == MANIFEST_VERSION
    filled = render_manifest(MANIFEST.read_text(encoding="utf-8"), APP_ID, "1.2.3")
    assert manifest_problems(json.loads(filled)) == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"packageName": "dev.leash.teams"}, "packageName"),
        ({"accentColor": "dark grey"}, "accentColor"),
        ({"id": "leash-bot"}, "$.id"),
        ({"manifestVersion": "1.16"}, "manifestVersion"),
    ],
    ids=["a property v1.17 does not have", "a bad colour", "an id that is no GUID", "1.16"],
)
def test_the_schema_check_catches_what_teams_would_refuse(
    change: dict[str, str], named: str
) -> None:
    filled = json.loads(render_manifest(MANIFEST.read_text(encoding="utf-8"), APP_ID, "1.2.3"))
    problems = manifest_problems(filled | change)
    assert any(named in problem for problem in problems), problems


def test_the_bot_is_the_app_in_every_scope() -> None:
    entry = bot()
    assert entry["botId"] == APP_ID_PLACEHOLDER
    assert entry["scopes"] == ["personal", "team", "groupChat"]
    assert entry["supportsFiles"] is False
    assert entry["isNotificationOnly"] is False
    scopes = [scope for listed in command_lists() for scope in listed["scopes"]]
    assert sorted(scopes) == ["personal", "team"], "one command list per scope"


def test_command_lists_respect_the_teams_limits() -> None:
    for listed in command_lists():
        titles = [command["title"] for command in listed["commands"]]
        assert 0 < len(titles) <= 10, listed["scopes"]
        assert len(set(titles)) == len(titles), f"repeated command in {listed['scopes']}"
    for command in commands():
        assert 0 < len(command["title"]) <= 32, command["title"]
        assert 0 < len(command["description"]) <= 128, command["title"]


@pytest.mark.parametrize("title", sorted({command["title"] for command in commands()}))
def test_every_listed_command_is_a_real_leash_command(title: str) -> None:
    assert title.split()[0] in USAGE
    problem = ""
    try:
        parse(title)
    except UsageError as error:
        problem = str(error)
    assert UNKNOWN_COMMAND not in problem, problem


@pytest.mark.parametrize(("name", "size"), [("color.png", (192, 192)), ("outline.png", (32, 32))])
def test_icons_have_the_sizes_teams_requires(name: str, size: tuple[int, int]) -> None:
    assert png_size((TEAMS_DIR / name).read_bytes()) == size
    with Image.open(TEAMS_DIR / name) as image:
        assert image.size == size


def test_the_outline_icon_is_white_on_transparent() -> None:
    with Image.open(TEAMS_DIR / "outline.png") as image:
        rgba = image.convert("RGBA")
    alphas = rgba.getchannel("A").histogram()
    assert alphas[0] > 0, "no transparent pixels"
    assert sum(alphas[1:]) > 0, "nothing drawn"
    red, green, blue, alpha = (channel.tobytes() for channel in rgba.split())
    drawn = [(r, g, b) for r, g, b, a in zip(red, green, blue, alpha, strict=True) if a]
    assert set(drawn) == {(255, 255, 255)}, "the outline icon may only be white"


def test_the_module_resolves_the_manifests_at_the_repository_root() -> None:
    assert MANIFEST_DIR.resolve() == TEAMS_DIR


def test_build_package_writes_the_three_files_with_the_app_id(tmp_path: Path) -> None:
    out = build_package(app_id=APP_ID, out=tmp_path / "nested" / "leash-teams.zip")
    assert out == tmp_path / "nested" / "leash-teams.zip"
    with zipfile.ZipFile(out) as archive:
        assert set(archive.namelist()) == PACKAGE_FILES
        packaged = json.loads(archive.read("manifest.json"))
        assert archive.read("color.png") == (TEAMS_DIR / "color.png").read_bytes()
        assert archive.read("outline.png") == (TEAMS_DIR / "outline.png").read_bytes()
    assert packaged["id"] == APP_ID
    assert packaged["bots"][0]["botId"] == APP_ID
    assert packaged["version"] == version("leash")
    assert "${" not in json.dumps(packaged)
    assert manifest_problems(packaged) == []
    assert not list(tmp_path.rglob("*.partial"))


def test_build_package_takes_another_app_version(tmp_path: Path) -> None:
    out = build_package(app_id=APP_ID, out=tmp_path / "leash-teams.zip", app_version="2.10.3")
    with zipfile.ZipFile(out) as archive:
        packaged = json.loads(archive.read("manifest.json"))
    assert packaged["version"] == "2.10.3"
    assert manifest_problems(packaged) == []


@pytest.mark.parametrize("app_version", ["1.0", "1.0.0rc1", "0.1.0.dev3", "v1.0.0", "1.0.0\n"])
def test_build_package_refuses_a_version_teams_does_not_take(
    tmp_path: Path, app_version: str
) -> None:
    with pytest.raises(ValueError, match=r"must be three numbers like 1\.2\.3"):
        build_package(app_id=APP_ID, out=tmp_path / "leash-teams.zip", app_version=app_version)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('"version": "${LEASH_VERSION}"', '"version": "0.1.0"', r"no \$\{LEASH_VERSION\}"),
        ('"manifestVersion": "1.17"', '"manifestVersion": "1.16"', "is not the version of"),
        ("/v1.17/", "/v1.16/", "is not the version of"),
    ],
    ids=["a fixed version", "manifestVersion bumped alone", "$schema bumped alone"],
)
def test_build_package_refuses_an_inconsistent_manifest(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    copy = tmp_path / "teams"
    shutil.copytree(TEAMS_DIR, copy)
    template = (copy / "manifest.json").read_text(encoding="utf-8")
    assert old in template
    (copy / "manifest.json").write_text(template.replace(old, new), encoding="utf-8")
    out = tmp_path / "leash-teams.zip"
    with pytest.raises(ValueError, match=message):
        build_package(app_id=APP_ID, out=out, manifest_dir=copy)
    assert not out.exists()


def test_build_package_is_reproducible(tmp_path: Path) -> None:
    first = build_package(app_id=APP_ID, out=tmp_path / "a.zip")
    second = build_package(app_id=APP_ID, out=tmp_path / "b.zip")
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize(
    "app_id",
    ["", "not-a-guid", "${MICROSOFT_APP_ID}", APP_ID + "0", "{" + APP_ID + "}", APP_ID + "\n"],
)
def test_build_package_refuses_an_app_id_that_is_not_a_guid(tmp_path: Path, app_id: str) -> None:
    with pytest.raises(ValueError, match="must be a GUID"):
        build_package(app_id=app_id, out=tmp_path / "leash-teams.zip")
    assert not list(tmp_path.iterdir())


def test_validate_app_id_accepts_upper_case() -> None:
    assert validate_app_id(APP_ID.upper()) == APP_ID.upper()


def test_build_package_checks_the_icon_sizes(tmp_path: Path) -> None:
    copy = tmp_path / "teams"
    shutil.copytree(TEAMS_DIR, copy)
    shutil.copyfile(TEAMS_DIR / "color.png", copy / "outline.png")
    with pytest.raises(ValueError, match=r"outline\.png must be 32x32 pixels, not 192x192"):
        build_package(app_id=APP_ID, out=tmp_path / "leash-teams.zip", manifest_dir=copy)


def test_build_package_refuses_a_missing_manifest_dir(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="No Teams manifest"):
        build_package(app_id=APP_ID, out=tmp_path / "leash-teams.zip", manifest_dir=tmp_path)


def test_the_cli_writes_the_zip(tmp_path: Path) -> None:
    out = tmp_path / "dist" / "leash-teams.zip"
    result = CliRunner().invoke(
        teams_package, ["--out", str(out)], env={"MICROSOFT_APP_ID": APP_ID}
    )
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    with zipfile.ZipFile(out) as archive:
        assert set(archive.namelist()) == PACKAGE_FILES
        packaged = json.loads(archive.read("manifest.json"))
    assert packaged["id"] == APP_ID
    assert manifest_problems(packaged) == []


def test_the_cli_fails_clearly_on_a_bad_app_id(tmp_path: Path) -> None:
    out = tmp_path / "leash-teams.zip"
    result = CliRunner().invoke(teams_package, ["--app-id", "leash-bot", "--out", str(out)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ")
    assert "must be a GUID" in lines[0]
    assert not out.exists()


def test_the_cli_needs_an_app_id(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        teams_package, ["--out", str(tmp_path / "x.zip")], env={"MICROSOFT_APP_ID": None}
    )
    assert result.exit_code == 2
    assert "--app-id" in result.output


def test_leash_registers_the_command() -> None:
    from bot.cli.main import main

    assert main.commands["teams-package"] is teams_package


def test_packaging_imports_no_chat_surface_or_bot_framework() -> None:
    code = (
        "import sys, bot.cli.teams, bot.cli.teams_package\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('bot.surfaces', 'botbuilder')))\n"
        "print(bad)\n"
    )
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
