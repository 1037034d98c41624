"""Provider name -> provider class, imported only when asked for (used by the tests only:
the app names its providers in bot.app)."""

from __future__ import annotations

import importlib
from typing import cast

from cloud.base import CloudConfigurationError, CloudProvider

# name -> (module, class); modules are imported lazily so an unused cloud's SDK never loads.
PROVIDERS: dict[str, tuple[str, str]] = {
    "aws": ("cloud.aws", "AwsProvider"),
    "gcp": ("cloud.gcp", "GcpProvider"),
    "azure": ("cloud.azure", "AzureProvider"),
}


def available_providers() -> tuple[str, ...]:
    """Name the providers Leash knows."""
    return tuple(sorted(PROVIDERS))


def load_provider_class(name: str) -> type[CloudProvider]:
    """Import and return the provider class registered under `name`."""
    try:
        module_name, class_name = PROVIDERS[name]
    except KeyError:
        known = ", ".join(available_providers())
        raise CloudConfigurationError(
            f"unknown cloud provider {name!r}; known providers: {known}"
        ) from None
    module = importlib.import_module(module_name)
    return cast("type[CloudProvider]", getattr(module, class_name))
