"""Build the Microsoft Teams app package: manifest.json and the two icons, zipped."""

from __future__ import annotations

import json
import re
import struct
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# The manifests live at the repository root, next to bot/, not inside the wheel.
MANIFEST_DIR = Path(__file__).absolute().parents[2] / "manifests" / "teams"
MANIFEST = "manifest.json"
COLOR_ICON = "color.png"
OUTLINE_ICON = "outline.png"
APP_ID_PLACEHOLDER = "${MICROSOFT_APP_ID}"
VERSION_PLACEHOLDER = "${LEASH_VERSION}"
ICON_SIZES = {COLOR_ICON: (192, 192), OUTLINE_ICON: (32, 32)}

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
# Teams takes an app version of three numbers, and needs it raised for every update.
_APP_VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
# "$schema": ".../teams/v1.17/MicrosoftTeams.schema.json" must name manifestVersion "1.17".
_SCHEMA_VERSION = re.compile(r"/teams/v([0-9]+\.[0-9]+)/MicrosoftTeams\.schema\.json")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A fixed timestamp keeps the zip byte-for-byte reproducible.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def validate_app_id(app_id: str) -> str:
    """Return the app id if it is a GUID; raise ValueError otherwise."""
    if not _GUID.fullmatch(app_id):
        shown = app_id if len(app_id) <= 60 else app_id[:57] + "..."
        raise ValueError(
            f"The Microsoft app id must be a GUID like 00000000-0000-0000-0000-000000000000, "
            f"not {shown!r}."
        )
    return app_id


def leash_version() -> str:
    """Leash's version from the installed package's metadata: the Teams app's version."""
    try:
        return version("leash")
    except PackageNotFoundError:
        raise ValueError(
            "Leash's version is unknown: it is not installed (run `make install`)."
        ) from None


def validate_app_version(app_version: str) -> str:
    """Return the version if Teams takes it (three numbers, like 1.2.3); raise ValueError."""
    if not _APP_VERSION.fullmatch(app_version):
        raise ValueError(
            f"The Teams app version must be three numbers like 1.2.3, not {app_version[:60]!r}."
        )
    return app_version


def png_size(data: bytes) -> tuple[int, int]:
    """Read a PNG's width and height from its IHDR header; raise ValueError if not a PNG."""
    if len(data) < 24 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def render_manifest(template: str, app_id: str, app_version: str) -> str:
    """Put the app id and version into the manifest template and check the result."""
    for placeholder in (APP_ID_PLACEHOLDER, VERSION_PLACEHOLDER):
        if placeholder not in template:
            raise ValueError(f"{MANIFEST} has no {placeholder} placeholder.")
    rendered = template.replace(APP_ID_PLACEHOLDER, app_id).replace(
        VERSION_PLACEHOLDER, app_version
    )
    document = json.loads(rendered)
    bot_ids = [bot.get("botId") for bot in document.get("bots", [])]
    if document.get("id") != app_id or bot_ids != [app_id]:
        raise ValueError(f"{MANIFEST} must use {APP_ID_PLACEHOLDER} as its id and botId.")
    if document.get("version") != app_version:
        raise ValueError(f"{MANIFEST} must use {VERSION_PLACEHOLDER} as its version.")
    named = _SCHEMA_VERSION.search(str(document.get("$schema", "")))
    if named is None or named.group(1) != document.get("manifestVersion"):
        raise ValueError(
            f"{MANIFEST}'s manifestVersion {document.get('manifestVersion')!r} is not the "
            f"version of the schema its $schema names."
        )
    return rendered


def build_package(
    *,
    app_id: str,
    out: Path,
    manifest_dir: Path = MANIFEST_DIR,
    app_version: str | None = None,
) -> Path:
    """Write the Teams app package zip to out and return its path.

    The app's version is Leash's own (package metadata) unless `app_version` is given.
    """
    validate_app_id(app_id)
    app_version = validate_app_version(app_version or leash_version())
    if not (manifest_dir / MANIFEST).is_file():
        raise FileNotFoundError(
            f"No Teams manifest at {manifest_dir / MANIFEST}; pass the manifests/teams directory."
        )
    template = (manifest_dir / MANIFEST).read_text(encoding="utf-8")
    manifest = render_manifest(template, app_id, app_version)
    icons: dict[str, bytes] = {}
    for name, expected in ICON_SIZES.items():
        data = (manifest_dir / name).read_bytes()
        try:
            size = png_size(data)
        except ValueError:
            raise ValueError(f"{manifest_dir / name} is not a PNG file.") from None
        if size != expected:
            raise ValueError(
                f"{name} must be {expected[0]}x{expected[1]} pixels, not {size[0]}x{size[1]}."
            )
        icons[name] = data
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in ((MANIFEST, manifest.encode("utf-8")), *icons.items()):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, content)
    partial.replace(out)
    return out
