"""The sandbox is the optional `leash[sandbox]` extra: load it, or say how to install it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from bot.config import ConfigError

if TYPE_CHECKING:
    from cloud.sandbox import Sandbox

# The top-level modules the `sandbox` extra in pyproject.toml brings and cloud/sandbox/ imports.
# cloud.sandbox imports moto only when a sandbox starts, so these are imported first: a missing
# extra is then found here, before anything starts, rather than half-way through a start.
EXTRA_MODULES = ("moto", "flask", "flask_cors", "werkzeug", "celpy", "cryptography")
INSTALL_HINT = (
    "The sandbox is an optional extra: pip install '.[sandbox]' in Leash's checkout (make run "
    "installs it; the PyPI package named leash is another project), or set LEASH_CLOUD=aws to "
    "use a real cloud"
)


class SandboxMissingError(ConfigError):
    """The sandbox was asked for, but the `sandbox` extra is not installed."""


def sandbox_class() -> type[Sandbox]:
    """Import the sandbox, turning a missing extra into a one-line install hint."""
    try:
        for module in EXTRA_MODULES:
            importlib.import_module(module)
        from cloud.sandbox import Sandbox
    except ModuleNotFoundError as error:
        # Only the extra's own modules: a missing module of Leash's is a bug, not an install step.
        if (error.name or "").partition(".")[0] not in EXTRA_MODULES:
            raise
        raise SandboxMissingError(f"{INSTALL_HINT} ({error.name} is not installed)") from None
    return Sandbox
