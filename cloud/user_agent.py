"""The user agent Leash's own cloud calls carry, so CloudTrail, Cloud Audit Logs and the
Activity Log (and the sandbox's emulators) can tell them from anyone else's."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

PRODUCT = "leash"


@cache
def leash_user_agent() -> str:
    """Return `leash/<version>` (the installed distribution's version, or `leash/dev`)."""
    try:
        installed = version(PRODUCT)
    except PackageNotFoundError:  # running from a source tree that was never installed
        installed = "dev"
    return f"{PRODUCT}/{installed}"


def is_leash(user_agent: str) -> bool:
    """Say whether a request's user agent (or x-goog-api-client) names Leash's product token."""
    return any(token.startswith(f"{PRODUCT}/") for token in user_agent.split())
