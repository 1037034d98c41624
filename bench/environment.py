"""What every benchmark records about the machine, the database and the library versions."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from sqlalchemy.engine import make_url


def package_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def describe(database_url: str, packages: Sequence[str]) -> dict[str, Any]:
    """The environment block of a benchmark's JSON result."""
    parsed = make_url(database_url)
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "database_kind": parsed.get_backend_name(),
        "database_driver": parsed.get_driver_name(),
        "database_url": parsed.render_as_string(hide_password=True),
        "versions": {p: package_version(p) for p in packages},
    }
