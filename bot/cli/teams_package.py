"""Build the Microsoft Teams app package: manifest.json and the two icons, zipped."""

from __future__ import annotations

import json
import re
import struct
import zipfile
from pathlib import Path

# The manifests live at the repository root, next to bot/, not inside the wheel.
MANIFEST_DIR = Path(__file__).absolute().parents[2] / "manifests" / "teams"
MANIFEST = "manifest.json"
COLOR_ICON = "color.png"
OUTLINE_ICON = "outline.png"
APP_ID_PLACEHOLDER = "${MICROSOFT_APP_ID}"
ICON_SIZES = {COLOR_ICON: (192, 192), OUTLINE_ICON: (32, 32)}

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
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


def png_size(data: bytes) -> tuple[int, int]:
    """Read a PNG's width and height from its IHDR header; raise ValueError if not a PNG."""
    if len(data) < 24 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def render_manifest(template: str, app_id: str) -> str:
    """Put the app id into the manifest template and check the result."""
    if APP_ID_PLACEHOLDER not in template:
        raise ValueError(f"{MANIFEST} has no {APP_ID_PLACEHOLDER} placeholder.")
    rendered = template.replace(APP_ID_PLACEHOLDER, app_id)
    document = json.loads(rendered)
    bot_ids = [bot.get("botId") for bot in document.get("bots", [])]
    if document.get("id") != app_id or bot_ids != [app_id]:
        raise ValueError(f"{MANIFEST} must use {APP_ID_PLACEHOLDER} as its id and botId.")
    return rendered


def build_package(*, app_id: str, out: Path, manifest_dir: Path = MANIFEST_DIR) -> Path:
    """Write the Teams app package zip to out and return its path."""
    validate_app_id(app_id)
    if not (manifest_dir / MANIFEST).is_file():
        raise FileNotFoundError(
            f"No Teams manifest at {manifest_dir / MANIFEST}; pass the manifests/teams directory."
        )
    manifest = render_manifest((manifest_dir / MANIFEST).read_text(encoding="utf-8"), app_id)
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
